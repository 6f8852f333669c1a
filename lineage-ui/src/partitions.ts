//! How partition keys are laid out as a calendar: one row per month of
//! daily keys (per day of hourly keys, per year of monthly keys), and per
//! value of any further dimension (`2024-01-05|eu`: the row "2024-01 · eu").
//! Pure; keys keep their order within a row.

export interface PartitionRow {
  label: string;
  keys: string[];
}

/** The row a time key belongs to, "" when it is no time key. */
function timeRow(time: string): string {
  if (/^\d{4}-\d{2}-\d{2}[T ]\d{2}/.test(time)) return time.slice(0, 10);
  if (/^\d{4}-\d{2}-\d{2}$/.test(time)) return time.slice(0, 7);
  if (/^\d{4}-\d{2}$/.test(time)) return time.slice(0, 4);
  return "";
}

/** The cell's short text within its row: the day of a daily key, the hour of an hourly one. */
export function cellLabel(key: string): string {
  const time = key.split("|")[0];
  const hourly = /^\d{4}-\d{2}-\d{2}[T ](\d{2})/.exec(time);
  if (hourly) return hourly[1];
  const daily = /^\d{4}-\d{2}-(\d{2})$/.exec(time);
  if (daily) return daily[1];
  const monthly = /^\d{4}-(\d{2})$/.exec(time);
  if (monthly) return monthly[1];
  return "";
}

export function partitionRows(keys: readonly string[]): PartitionRow[] {
  const rows = new Map<string, string[]>();
  for (const key of keys) {
    const [time, ...dims] = key.split("|");
    const label = [timeRow(time), dims.join("|")].filter((s) => s !== "").join(" · ");
    const row = rows.get(label);
    if (row) row.push(key);
    else rows.set(label, [key]);
  }
  return [...rows].map(([label, ks]) => ({ label, keys: ks }));
}
