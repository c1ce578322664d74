/** The Prometheus endpoint lives in @spines-ts/daemon-kit (shared with wackamole-node). */
export { MAX_METRICS_CONNECTIONS, type Metric, MetricsServer, renderMetrics } from "@spines-ts/daemon-kit";
