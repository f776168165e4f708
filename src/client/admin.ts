/**
 * For operator consoles built on the SDK (archon-ws/client/admin): the admin API's answers as
 * schemas (docs/http-api.md#admin-api), to read them through. A separate entry, so a trader
 * dashboard importing archon-ws/client does not carry a schema library.
 */
import './jitless.js';
export {
  ADMIN_ANSWERS,
  ADMIN_READERS,
  BroadcastAnswerSchema,
  CleanupAnswerSchema,
  ConnectionsAnswerSchema,
  FlushAnswerSchema,
  StatsAnswerSchema,
  StatusAnswerSchema,
  StatusReader,
} from '../protocol/admin.js';
