/** A hand-written SVG bar chart of the latency benchmark: mean and p99 per system, rate and loss. */

interface Row {
  system: string;
  linkMode: string;
  rate: number;
  lossPct: number;
  meanMs: number;
  p99Ms: number;
  fellBehind?: boolean;
}

const COLORS: Record<string, string> = {
  "hop-by-hop": "#1b9e77",
  "hop-by-hop-datagram": "#66a61e",
  "e2e-overlay": "#d95f02",
  "kernel-tcp-bbr": "#7570b3",
  "kernel-tcp-cubic": "#e7298a",
  model: "#999999",
  "model hop-by-hop": "#555555",
  "model e2e-rto": "#bbbbbb",
};

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;");

/** Bars of p99 (light) with the mean (dark) over them, on a log scale, one panel per rate. */
export function latencyChart(cases: Row[]): string {
  const rows = cases.filter(
    (c) => c.system !== "model" || c.linkMode === "hop-by-hop ordered" || c.linkMode === "e2e-rto ordered",
  );
  const rates = [...new Set(rows.map((r) => r.rate))].sort((a, b) => a - b);
  const losses = [...new Set(rows.map((r) => r.lossPct))].sort((a, b) => a - b);
  const label = (r: Row) => (r.system === "model" ? `model ${r.linkMode.replace(" ordered", "")}` : r.system);
  const series = [...new Set(rows.map(label))];
  const barW = 12;
  const groupW = series.length * barW + 20;
  const panelW = losses.length * groupW + 60;
  const H = 300;
  const top = 40;
  const width = rates.length * panelW + 40;
  const height = H + top + 60 + series.length * 16;
  const lo = Math.log10(10);
  const hi = Math.log10(20_000);
  const y = (ms: number) => top + H - ((Math.log10(Math.max(10, Math.min(20_000, ms))) - lo) / (hi - lo)) * H;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="11">`,
    `<title>One-way latency, 4 hops × 10 ms, 1,000-byte messages: p99 (light) and mean (dark), ms, log scale</title>`,
    `<text x="10" y="16" font-size="13">One-way latency, 4 hops × 10 ms, 1,000-byte messages: p99 (light) and mean (dark), ms, log scale</text>`,
  ];
  rates.forEach((rate, pi) => {
    const x0 = 40 + pi * panelW;
    out.push(`<text x="${x0}" y="${top - 6}">${rate} messages/s</text>`);
    for (const t of [10, 100, 1000, 10_000]) {
      out.push(
        `<line x1="${x0}" x2="${x0 + panelW - 40}" y1="${y(t)}" y2="${y(t)}" stroke="#ddd"/>`,
        `<text x="${x0 - 4}" y="${y(t) + 4}" text-anchor="end">${t}</text>`,
      );
    }
    losses.forEach((loss, gi) => {
      const gx = x0 + 10 + gi * groupW;
      out.push(
        `<text x="${gx + (series.length * barW) / 2}" y="${top + H + 14}" text-anchor="middle">${loss} % loss</text>`,
      );
      series.forEach((s, si) => {
        const r = rows.find((c) => c.rate === rate && c.lossPct === loss && label(c) === s);
        if (r === undefined || !Number.isFinite(r.meanMs)) return;
        const color = COLORS[s] ?? COLORS[r.system] ?? "#333";
        const bx = gx + si * barW;
        out.push(
          `<rect x="${bx}" y="${y(r.p99Ms)}" width="${barW - 2}" height="${top + H - y(r.p99Ms)}" fill="${color}" opacity="0.35"><title>${esc(s)} p99 ${r.p99Ms.toFixed(1)} ms</title></rect>`,
          `<rect x="${bx}" y="${y(r.meanMs)}" width="${barW - 2}" height="${top + H - y(r.meanMs)}" fill="${color}"><title>${esc(s)} mean ${r.meanMs.toFixed(1)} ms</title></rect>`,
        );
        if (r.fellBehind) out.push(`<text x="${bx + 1}" y="${y(r.p99Ms) - 3}" font-size="9">!</text>`);
      });
    });
  });
  series.forEach((s, i) => {
    const yy = top + H + 34 + i * 16;
    out.push(
      `<rect x="40" y="${yy - 9}" width="10" height="10" fill="${COLORS[s] ?? COLORS.model}"/>`,
      `<text x="56" y="${yy}">${esc(s)}</text>`,
    );
  });
  out.push(`<text x="200" y="${top + H + 34}">! = fell behind the offered rate</text>`, "</svg>");
  return `${out.join("\n")}\n`;
}
