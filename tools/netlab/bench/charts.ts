/** Hand-written SVG charts of the fairness and reroute benchmarks. */

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;");

interface FairRow {
  kind: string;
  tcpCc: string;
  tcpFlows: number;
  overlayFlows: number;
  overlayMbit: number[];
  tcpMbit: number[];
  /** Reference cases: one kernel Reno flow in place of the overlay. */
  renoMbit?: number[];
  totalMbit: number;
  jain: number;
  overlayShare: number;
}

/** One group of bars per case (overlay flows green, TCP flows purple), fair share dashed, Jain above. */
export function fairnessChart(cases: FairRow[], o: { rateMbit: number; rttMs: number }): string {
  const barW = 14;
  const gap = 26;
  const H = 260;
  const top = 50;
  const left = 50;
  const groups = cases.map((c) => c.overlayMbit.length + (c.renoMbit?.length ?? 0) + c.tcpMbit.length);
  const width = left + groups.reduce((a, n) => a + n * barW + gap, 0) + 20;
  const height = top + H + 70;
  const max = o.rateMbit * 1.1;
  const y = (v: number) => top + H - (Math.max(0, Math.min(max, v)) / max) * H;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="11">`,
    `<title>Throughput per flow on one ${o.rateMbit} Mbit/s, ${o.rttMs} ms RTT bottleneck: overlay (green) or reference Reno (orange) vs kernel TCP (purple); dashed = fair share; J = Jain's index</title>`,
    `<text x="10" y="16" font-size="13">Throughput per flow on one ${o.rateMbit} Mbit/s, ${o.rttMs} ms RTT bottleneck: overlay (green) or reference Reno (orange) vs kernel TCP (purple); dashed = fair share; J = Jain's index</text>`,
  ];
  for (const t of [0, 5, 10, 15, 20]) {
    if (t > max) continue;
    out.push(
      `<line x1="${left}" x2="${width - 10}" y1="${y(t)}" y2="${y(t)}" stroke="#ddd"/>`,
      `<text x="${left - 4}" y="${y(t) + 4}" text-anchor="end">${t}</text>`,
    );
  }
  let x = left + 10;
  cases.forEach((c, i) => {
    const n = groups[i] ?? 0;
    const flows = [
      ...c.overlayMbit.map((v) => ({ v, color: "#1b9e77", who: "overlay" })),
      ...(c.renoMbit ?? []).map((v) => ({ v, color: "#d95f02", who: "tcp reno (reference)" })),
      ...c.tcpMbit.map((v) => ({ v, color: "#7570b3", who: `tcp ${c.tcpCc}` })),
    ];
    flows.forEach((f, k) => {
      out.push(
        `<rect x="${x + k * barW}" y="${y(f.v)}" width="${barW - 2}" height="${top + H - y(f.v)}" fill="${f.color}"><title>${esc(f.who)} ${f.v.toFixed(2)} Mbit/s</title></rect>`,
      );
    });
    if (n > 0) {
      const fair = c.totalMbit / n;
      out.push(
        `<line x1="${x - 2}" x2="${x + n * barW}" y1="${y(fair)}" y2="${y(fair)}" stroke="#333" stroke-dasharray="3,2"/>`,
        `<text x="${x}" y="${top - 6}" font-size="10">J=${Number.isFinite(c.jain) ? c.jain.toFixed(2) : "-"}</text>`,
      );
    }
    const label = c.kind === "baseline" ? "alone" : c.kind === "reference" ? `ref ${c.tcpCc}` : c.tcpCc;
    out.push(
      `<text x="${x}" y="${top + H + 14}" font-size="10">${c.renoMbit !== undefined ? "R" : c.overlayFlows}+${c.tcpFlows}</text>`,
      `<text x="${x}" y="${top + H + 26}" font-size="10">${esc(label)}</text>`,
    );
    x += n * barW + gap;
  });
  out.push(
    `<text x="${left}" y="${top + H + 46}">label: overlay flows + TCP flows, congestion control of the TCP flows ("alone" = baseline; "R+n ref" = one Reno flow + n TCP flows)</text>`,
    "</svg>",
  );
  return `${out.join("\n")}\n`;
}

interface RerouteRow {
  fault: string;
  mode: string;
  outageMs: number;
  lost: number;
  duplicated: number;
}

/** Outage per fault as bars against the 1.5 s target line; lost/duplicated counts as text. */
export function rerouteChart(cases: RerouteRow[], targetMs: number): string {
  const barW = 60;
  const gap = 40;
  const H = 240;
  const top = 40;
  const left = 60;
  const width = left + cases.length * (barW + gap) + 40;
  const height = top + H + 60;
  const max =
    Math.max(targetMs * 1.5, ...cases.map((c) => (Number.isFinite(c.outageMs) ? c.outageMs : 0))) * 1.1;
  const y = (v: number) => top + H - (Math.max(0, Math.min(max, v)) / max) * H;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="11">`,
    `<title>Reroute: longest gap between deliveries after a fault on the active path (ms); dashed = ${targetMs} ms target</title>`,
    `<text x="10" y="16" font-size="13">Reroute: longest gap between deliveries after a fault on the active path (ms); dashed = ${targetMs} ms target</text>`,
  ];
  const step = max > 5000 ? 2000 : max > 2000 ? 500 : 250;
  for (let t = 0; t <= max; t += step)
    out.push(
      `<line x1="${left}" x2="${width - 10}" y1="${y(t)}" y2="${y(t)}" stroke="#eee"/>`,
      `<text x="${left - 4}" y="${y(t) + 4}" text-anchor="end">${t}</text>`,
    );
  out.push(
    `<line x1="${left}" x2="${width - 10}" y1="${y(targetMs)}" y2="${y(targetMs)}" stroke="#d95f02" stroke-dasharray="5,3"/>`,
  );
  cases.forEach((c, i) => {
    const x = left + 20 + i * (barW + gap);
    const v = Number.isFinite(c.outageMs) ? c.outageMs : max;
    const ok = c.outageMs <= targetMs && c.lost === 0 && c.duplicated === 0;
    out.push(
      `<rect x="${x}" y="${y(v)}" width="${barW}" height="${top + H - y(v)}" fill="${ok ? "#1b9e77" : "#e7298a"}"><title>${esc(c.fault)} ${c.outageMs.toFixed(0)} ms</title></rect>`,
      `<text x="${x}" y="${y(v) - 4}">${Number.isFinite(c.outageMs) ? c.outageMs.toFixed(0) : "no recovery"}</text>`,
      `<text x="${x}" y="${top + H + 14}">${esc(c.fault)} (${esc(c.mode)})</text>`,
      `<text x="${x}" y="${top + H + 28}" font-size="10">lost ${c.lost}, dup ${c.duplicated}</text>`,
    );
  });
  out.push("</svg>");
  return `${out.join("\n")}\n`;
}
