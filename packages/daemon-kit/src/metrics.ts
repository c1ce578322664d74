/** A Prometheus text-format endpoint (GET /metrics) bound to a loopback address. */
import { createServer, type Server } from "node:http";

export interface Metric {
  readonly name: string;
  readonly help: string;
  readonly type: "counter" | "gauge";
  readonly samples: readonly {
    readonly labels?: Readonly<Record<string, string | number>>;
    readonly value: number;
  }[];
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

/** Renders metrics in the Prometheus text exposition format (version 0.0.4). */
export function renderMetrics(metrics: readonly Metric[]): string {
  const out: string[] = [];
  for (const m of metrics) {
    out.push(`# HELP ${m.name} ${m.help}`, `# TYPE ${m.name} ${m.type}`);
    for (const s of m.samples) {
      const labels = s.labels
        ? `{${Object.entries(s.labels)
            .map(([k, v]) => `${k}="${escapeLabel(String(v))}"`)
            .join(",")}}`
        : "";
      out.push(`${m.name}${labels} ${Number.isFinite(s.value) ? s.value : 0}`);
    }
  }
  return `${out.join("\n")}\n`;
}

/** Concurrent scrapers; more are closed at once. */
export const MAX_METRICS_CONNECTIONS = 16;

export class MetricsServer {
  readonly #server: Server;

  constructor(collect: () => readonly Metric[]) {
    this.#server = createServer((req, res) => {
      if (req.method !== "GET" || (req.url !== "/metrics" && req.url !== "/")) {
        res.writeHead(404, { "content-type": "text/plain" }).end("not found; try /metrics\n");
        return;
      }
      let body: string;
      try {
        body = renderMetrics(collect());
      } catch (e) {
        res.writeHead(500, { "content-type": "text/plain" }).end(`${String(e)}\n`);
        return;
      }
      res.writeHead(200, { "content-type": "text/plain; version=0.0.4" }).end(body);
    });
    // Bounds against a hostile local scraper: a few connections, short timeouts, and a socket error
    // (reset, garbage) only ever closes that socket.
    this.#server.maxConnections = MAX_METRICS_CONNECTIONS;
    this.#server.headersTimeout = 5000;
    this.#server.requestTimeout = 10_000;
    this.#server.on("clientError", (_e, sock) => sock.destroy());
    this.#server.on("connection", (sock) => sock.on("error", () => {}));
  }

  /** Resolves with the bound port. */
  listen(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      this.#server.once("error", reject);
      this.#server.listen({ host, port }, () => {
        this.#server.off("error", reject);
        const a = this.#server.address();
        resolve(typeof a === "object" && a !== null ? a.port : port);
      });
    });
  }

  close(): Promise<void> {
    this.#server.closeAllConnections();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }
}
