/** archon-ws/client: the browser and Node SDK of archon-ws. */
export { AckError } from './acks.js';
export { ArchonClient } from './client.js';
export type { ArchonClientOptions, SubscribeOptions } from './client.js';
export type { TokenSource } from './token.js';
export type {
  ClientEvents,
  ConnectionState,
  DisconnectInfo,
  RetryInfo,
  StateChange,
  TransportChange,
} from './connection-state.js';
export type { Transport, TransportMode } from './transport.js';
export type { Subscription, SubscriptionEvents, SubscriptionState } from './subscription.js';
export type { KeyedStore, KeyedStoreEvents, PositionsStore, StoreChange } from './keyed-store.js';
export { StoreBatcher, type KeyChange, type StoreBatch } from './store-batch.js';
export type {
  AlertAckInfo,
  ChannelEvent,
  ChannelSnapshot,
  ClientError,
  Gap,
  GapReason,
  Position,
  SdkErrorCode,
  SystemNotice,
  UnackedAlerts,
  WelcomeInfo,
} from './types.js';
export { Backoff } from './backoff.js';
export type { BackoffOptions } from './backoff.js';
export type { NetworkEvents } from './network.js';
export type { Listenable, Listener } from './events.js';
export { SDK_NAME, SDK_VERSION } from './version.js';
export type { CloseAction } from '../protocol/index.js';
// For operator consoles built on the SDK: the admin API's answers, RB-003 §5's criteria and
// the runbook's thresholds.
export {
  ALERT_UNACKED_ALERT_SECONDS,
  BASELINE_SHARE,
  CAPACITY_SHARE,
  ERRORS_ALERT_PER_MINUTE,
  LAG_BUSY_MS,
  LAG_STUCK_MS,
  LATENCY_ALERT_MS,
  MAX_BROADCAST_P99_MS,
  MAX_ERRORS_PER_MINUTE,
  MAX_QUEUE_DEPTH,
  QUEUE_WARN,
  readErrorAnswer,
  successCriteria,
} from '../protocol/index.js';
export type {
  AdminEndpoint,
  AlertEntry,
  AlertsAnswer,
  BroadcastAnswer,
  CleanupAnswer,
  ConnectionEntry,
  CriteriaInput,
  ErrorAnswer,
  FlushAnswer,
  InstanceStatus,
  MemoryInfo,
  StatsAnswer,
  StatusAnswer,
  SuccessCheck,
} from '../protocol/index.js';
