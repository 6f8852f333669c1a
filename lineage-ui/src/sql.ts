//! A tiny SQL tokenizer for highlighting: keywords, strings, numbers,
//! comments, identifiers (bare or quoted), operators and whitespace. It
//! never fails: every character of the input lands in exactly one token, so
//! joining the tokens' text gives the input back.

export type TokenKind = "keyword" | "string" | "number" | "comment" | "identifier" | "operator" | "whitespace";

export interface Token {
  kind: TokenKind;
  text: string;
}

const KEYWORDS = new Set(
  `select from where group by order having limit offset as on join left right full inner outer cross natural
  using union all distinct intersect except with recursive case when then else end and or not in is null like
  ilike between exists any some true false asc desc nulls first last over partition rows range unbounded
  preceding following current row window filter cast interval date timestamp time insert into values update
  set delete create table view replace if drop alter lateral qualify within array struct`
    .split(/\s+/)
    .filter((w) => w !== ""),
);

const isDigit = (c: string) => c >= "0" && c <= "9";
const isIdentStart = (c: string) => /[A-Za-z_\u00c0-\uffff]/.test(c);
const isIdentPart = (c: string) => /[A-Za-z0-9_$\u00c0-\uffff]/.test(c);

/** Splits `sql` into tokens; keywords are matched case-insensitively. */
export function tokenizeSql(sql: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  const n = sql.length;
  const push = (kind: TokenKind, start: number, end: number) => {
    const last = tokens[tokens.length - 1];
    // Runs of operators or whitespace merge: fewer spans, same text.
    if (last && last.kind === kind && (kind === "operator" || kind === "whitespace")) last.text += sql.slice(start, end);
    else tokens.push({ kind, text: sql.slice(start, end) });
  };
  while (i < n) {
    const c = sql[i];
    const start = i;
    if (c === "-" && sql[i + 1] === "-") {
      while (i < n && sql[i] !== "\n") i++;
      push("comment", start, i);
    } else if (c === "/" && sql[i + 1] === "*") {
      const close = sql.indexOf("*/", i + 2);
      i = close < 0 ? n : close + 2;
      push("comment", start, i);
    } else if (c === "'") {
      i++;
      while (i < n) {
        if (sql[i] === "'") {
          if (sql[i + 1] === "'") i += 2; // '' is an escaped quote
          else break;
        } else i++;
      }
      i = Math.min(n, i + 1);
      push("string", start, i);
    } else if (c === '"' || c === "`") {
      const close = sql.indexOf(c, i + 1);
      i = close < 0 ? n : close + 1;
      push("identifier", start, i);
    } else if (/\s/.test(c)) {
      while (i < n && /\s/.test(sql[i])) i++;
      push("whitespace", start, i);
    } else if (isDigit(c) || (c === "." && isDigit(sql[i + 1] ?? ""))) {
      while (i < n && (isDigit(sql[i]) || sql[i] === ".")) i++;
      if ((sql[i] === "e" || sql[i] === "E") && /[0-9+-]/.test(sql[i + 1] ?? "")) {
        i += 2;
        while (i < n && isDigit(sql[i])) i++;
      }
      push("number", start, i);
    } else if (isIdentStart(c)) {
      while (i < n && isIdentPart(sql[i])) i++;
      const word = sql.slice(start, i);
      push(KEYWORDS.has(word.toLowerCase()) ? "keyword" : "identifier", start, i);
    } else {
      i++;
      push("operator", start, i);
    }
  }
  return tokens;
}
