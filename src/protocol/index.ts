export * from './channels.js';
export * from './close-codes.js';
export * from './errors.js';
export * from './merge-patch.js';
export * from './messages.js';
export * from './sse.js';
// Types only: the schemas behind them (zod) are for consoles and tools, which import
// ./admin.js and ./probes.js themselves, so a dashboard bundle never carries them.
export type {
  AdminEndpoint,
  AlertEntry,
  AlertsAnswer,
  AlertState,
  BroadcastAnswer,
  CleanupAnswer,
  ConnectionEntry,
  FlushAnswer,
  InstanceStatus,
  MemoryInfo,
  StatsAnswer,
  StatusAnswer,
} from './admin.js';
export * from './criteria.js';
export * from './diagnostics.js';
export type { HealthAnswer, HealthMessage, TestWelcomeMessage, TestWelcomeRead } from './probes.js';
export * from './limits.js';
export * from './metrics.js';
