// A line diff (longest common subsequence) for comparing two versions'
// programs.

/** Lines of `a` and `b` as [' ' | '-' | '+', line] in order. */
export function diffLines(a, b) {
  const x = a.split('\n');
  const y = b.split('\n');
  // Trim the common head and tail so the table stays small.
  let head = 0;
  while (head < x.length && head < y.length && x[head] === y[head]) head++;
  let tail = 0;
  while (tail < x.length - head && tail < y.length - head
    && x[x.length - 1 - tail] === y[y.length - 1 - tail]) tail++;
  const xs = x.slice(head, x.length - tail);
  const ys = y.slice(head, y.length - tail);
  const n = xs.length;
  const m = ys.length;
  const t = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      t[i][j] = xs[i] === ys[j] ? t[i + 1][j + 1] + 1 : Math.max(t[i + 1][j], t[i][j + 1]);
    }
  }
  const out = x.slice(0, head).map((l) => [' ', l]);
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && xs[i] === ys[j]) { out.push([' ', xs[i]]); i++; j++; }
    else if (j < m && (i === n || t[i][j + 1] >= t[i + 1][j])) { out.push(['+', ys[j]]); j++; }
    else { out.push(['-', xs[i]]); i++; }
  }
  return out.concat(x.slice(x.length - tail).map((l) => [' ', l]));
}
