/** Answers of the admin HTTP API that both the gateway and the `archon-ws` command read. */

/** GET /api/v1/admin/websocket/stats */
export interface StatsAnswer {
  minutes: number;
  errors_per_minute: number;
  messages_per_minute: number;
  connects_per_minute: number;
  disconnects_per_minute: number;
  errors_by_type: Record<string, number>;
  disconnects_by_code: Record<string, number>;
  series: { minute: string; connections: number; messages: number; errors: number }[];
}
