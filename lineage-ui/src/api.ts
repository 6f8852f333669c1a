//! The JSON API of `cairn serve`: `POST /api/v1/<Method>` with the request
//! message as JSON, the response message back (snake_case fields, unset
//! messages as null). Streams are ndjson read with `fetch`, since
//! EventSource cannot send the Authorization header.
//!
//! Tokens: a 401 asks the person for their secret (the sign-in form), keeps
//! it in sessionStorage under `cairn-token` and retries. The token only ever
//! travels in the Authorization header, never in a URL.

import type { GraphNodeDef } from "./graph";

export interface StaleCause { cause: string; name: string; text: string }
export interface Version {
  materialization_id: number; run_id: string; partition: string; code_version: string; input_version: string;
  data_version: string; row_count: number; bytes_written: number; wall_ms: number; committed_at: string;
  rows_added?: number | null; rows_removed?: number | null; cost_usd?: number | null;
}
export interface Failure { run_id: string; error: string; at: string; failed_checks: string }
export interface SlaReading { level: string; basis: string; since: string; age_seconds: number | null }
export interface UnitStatus {
  partition: string; state: string; causes: StaleCause[]; current: Version | null; last_failure: Failure | null;
  input_version: string; health: string; sla: SlaReading | null;
}
export interface PartitionSummary {
  total: number; fresh: number; stale: number; missing: number; failed: number; rows: number; last_committed_at: string;
  stale_causes: string[]; list: UnitStatus[]; sla_warn: number; sla_failed: number;
}
export interface AssetStatus {
  name: string; state: string; causes: StaleCause[]; code_version: string; current: Version | null;
  last_failure: Failure | null; partitions: PartitionSummary | null; failing_checks: string[]; warning_checks?: string[]; health: string;
  sla: SlaReading | null;
}
export interface StatusResponse { assets: AssetStatus[] }
export interface ColumnStats { name: string; null_count: number | null; min: string | null; max: string | null }
export interface Metrics { rows_added: number | null; rows_removed: number | null; columns: ColumnStats[]; cost_usd: number }
export interface CheckResult { name: string; severity: string; passed: boolean; failing_rows: number; sample_json: string; error: string }
export interface Input { name: string; kind: string; partition: string; data_version: string; materialization_id: number }
export interface Attempt { run_id: string; asset: string; partition: string; outcome: string; error: string; at: string }
export interface AssetDetails {
  status: AssetStatus | null; file: string; description: string; owner: string; tags: string[]; sql: string;
  upstream: string[]; downstream: string[]; partitioning: string; current: Version | null; inputs: Input[];
  checks: CheckResult[]; history: Version[]; schema_json: string; metrics: Metrics | null; last_attempt: Attempt | null;
  /** Check results recorded for it (all partitions), newest first; absent from older servers. */
  check_history?: CheckRun[];
}
export interface CheckRun { run_id: string; partition: string; materialization_id: number; at: string; result: CheckResult | null }
export interface ColumnNode { table: string; column: string; kind: string; is_source: boolean; upstream: ColumnNode[] }
export interface PlannedUnit { asset: string; partition: string; decision: string; causes: StaleCause[]; last_failure: string }
export interface ExplainResponse { build: number; build_unless_upstream_unchanged: number; forced: number; fresh: number; units: PlannedUnit[] }
export interface ProvenanceNode {
  name: string; kind: string; partition: string; data_version: string; materialization_id: number; run_id: string;
  run_user: string; committed_at: string; code_version: string; rows: number; expired: boolean; inputs: ProvenanceNode[];
}
export interface UnitOutcome { asset: string; partition: string; outcome: string; error: string }
export interface Run {
  run_id: string; status: string; command: string; trigger: string; user: string; host: string; started_at: string;
  finished_at: string; error: string; units: UnitOutcome[]; queued_at: string;
}
export interface UnitResult { asset: string; partition: string; outcome: string; error: string; checks: CheckResult[] }
export interface RunEvent {
  run_id: string; event: string; asset: string; partition: string; error: string; rows: number; wall_ms: number;
  at: string; status: string; data_unchanged?: boolean; planned?: { asset: string; partition: string }[]; report: { results: UnitResult[] } | null;
}
export interface Identity { name: string; role: string; tokens: boolean }
export interface RunAccepted { run_id: string; attached: boolean }

export class ApiError extends Error {
  constructor(public status: number, public code: string, message: string) {
    super(message);
  }
}

const TOKEN_KEY = "cairn-token";

/** Bytes of API responses read so far (for `stats().bytesLoaded`). */
export const traffic = { bytes: 0 };

/** Set by the page: shows the sign-in form and resolves with the secret typed. */
let askForToken: ((refused: boolean) => Promise<string>) | null = null;
let pendingSignIn: Promise<string> | null = null;

export function onSignInNeeded(ask: (refused: boolean) => Promise<string>): void {
  askForToken = ask;
}

function token(): string | null {
  try {
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

async function signIn(): Promise<void> {
  if (!askForToken) throw new ApiError(401, "unauthenticated", "This server needs a token.");
  // Several calls failing at once share one form.
  pendingSignIn ??= askForToken(token() !== null).finally(() => (pendingSignIn = null));
  const secret = await pendingSignIn;
  sessionStorage.setItem(TOKEN_KEY, secret);
}

async function post(method: string, body: unknown, signal?: AbortSignal): Promise<Response> {
  for (;;) {
    const headers: Record<string, string> = { "content-type": "application/json" };
    const t = token();
    if (t) headers.authorization = `Bearer ${t}`;
    const res = await fetch(`/api/v1/${method}`, { method: "POST", headers, body: JSON.stringify(body ?? {}), signal });
    if (res.status === 401) {
      await res.arrayBuffer().catch(() => undefined);
      await signIn();
      continue;
    }
    if (!res.ok) {
      let code = "error";
      let message = `${method} failed: HTTP ${res.status}`;
      try {
        const e = JSON.parse(await res.text());
        if (typeof e.message === "string" && e.message !== "") message = e.message;
        if (typeof e.code === "string") code = e.code;
      } catch {
        // Not JSON: keep the generic message.
      }
      throw new ApiError(res.status, code, message);
    }
    return res;
  }
}

/** One unary call. */
export async function call<T>(method: string, body: unknown = {}): Promise<T> {
  const res = await post(method, body);
  const buf = await res.arrayBuffer();
  traffic.bytes += buf.byteLength;
  return JSON.parse(new TextDecoder().decode(buf)) as T;
}

/** A streaming call: `onEvent` per ndjson line until the server ends it or `signal` aborts. */
export async function stream(method: string, body: unknown, onEvent: (e: RunEvent) => void, signal?: AbortSignal): Promise<void> {
  const res = await post(method, body, signal);
  if (!res.body) return;
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buffered = "";
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    const { lines, rest } = splitLines(buffered + decoder.decode(value, { stream: true }));
    buffered = rest;
    for (const line of lines) onEvent(JSON.parse(line) as RunEvent);
  }
  const last = buffered.trim();
  if (last !== "") onEvent(JSON.parse(last) as RunEvent);
}

/** The complete, non-blank lines of ndjson text read so far, and the incomplete rest. */
export function splitLines(text: string): { lines: string[]; rest: string } {
  const parts = text.split("\n");
  const rest = parts.pop() ?? "";
  return { lines: parts.map((l) => l.trim()).filter((l) => l !== ""), rest };
}

export const api = {
  graph: () => call<{ nodes: GraphNodeDef[] }>("Graph"),
  whoami: () => call<Identity>("WhoAmI"),
  status: (selection: string[], partitions = false) => call<StatusResponse>("Status", { selection, partitions }),
  asset: (name: string) => call<AssetDetails>("GetAsset", { name }),
  columnLineage: (asset: string, column: string) => call<ColumnNode>("ColumnLineage", { asset, column, depth: 0 }),
  explain: (name: string) => call<ExplainResponse>("Explain", { selection: [name] }),
  provenance: (asset: string, partition: string, version = 0) => call<ProvenanceNode>("Provenance", { asset, partition, version }),
  listRuns: (limit: number) => call<{ runs: Run[] }>("ListRuns", { limit }),
  getRun: (runId: string) => call<Run>("GetRun", { run_id: runId }),
  cancelRun: (runId: string) => call<Run>("CancelRun", { run_id: runId }),
  materialize: (name: string, force: boolean) => call<RunAccepted>("Materialize", { selection: [name], force }),
  backfill: (name: string, from: string, to: string) => call<RunAccepted>("Backfill", { selection: [name], from, to }),
};
