export * from './channels.js';
export * from './close-codes.js';
export * from './errors.js';
export * from './messages.js';
export * from './admin.js';
export * from './criteria.js';
export * from './diagnostics.js';
export * from './limits.js';
