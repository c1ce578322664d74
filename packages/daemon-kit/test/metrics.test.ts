import { request } from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import { type Metric, MetricsServer, renderMetrics } from "../src/metrics.ts";

const metrics: Metric[] = [
  { name: "x_total", help: "things", type: "counter", samples: [{ value: 3 }] },
  {
    name: "y",
    help: "by peer",
    type: "gauge",
    samples: [
      { labels: { peer: 2, name: 'a"b\\c\nd' }, value: 1.5 },
      { labels: { peer: 3 }, value: Number.NaN },
    ],
  },
];

function get(port: number, path: string, method = "GET"): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path, method }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => {
        body += d;
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

let server: MetricsServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

describe("metrics", () => {
  it("renders the Prometheus text format, escaping labels and zeroing non-finite values", () => {
    expect(renderMetrics(metrics)).toBe(
      [
        "# HELP x_total things",
        "# TYPE x_total counter",
        "x_total 3",
        "# HELP y by peer",
        "# TYPE y gauge",
        'y{peer="2",name="a\\"b\\\\c\\nd"} 1.5',
        'y{peer="3"} 0',
        "",
      ].join("\n"),
    );
  });

  it("serves GET /metrics on loopback, 404 elsewhere, 500 when collecting throws", async () => {
    let fail = false;
    server = new MetricsServer(() => {
      if (fail) throw new Error("collector broke");
      return metrics;
    });
    const port = await server.listen("127.0.0.1", 0);
    const ok = await get(port, "/metrics");
    expect(ok.status).toBe(200);
    expect(ok.body).toBe(renderMetrics(metrics));
    expect((await get(port, "/other")).status).toBe(404);
    expect((await get(port, "/metrics", "POST")).status).toBe(404);
    fail = true;
    const bad = await get(port, "/metrics");
    expect(bad.status).toBe(500);
    expect(bad.body).toContain("collector broke");
  });
});
