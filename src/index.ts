export { Gateway, type GatewayOptions } from './server/gateway.js';
export { loadConfig, ConfigError, type Config } from './server/config.js';
export type { Backplane, PublishInput, PublishResult } from './server/backplane/backplane.js';
export * from './protocol/index.js';
