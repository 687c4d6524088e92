import BallastStorage
import Prometheus

/// The history store's gauges on the node's `/metrics`.
final class HistoryMetrics: Sendable {
    private let runs: Gauge
    private let segments: Gauge
    private let liveBytes: Gauge
    private let totalBytes: Gauge
    private let compactedSegments: Gauge
    private let closeWaiters: Gauge

    init(registry: PrometheusCollectorRegistry) {
        func name(_ metric: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
            MetricNameDescriptor(namespace: "ballast", subsystem: "history", metricName: metric, unitName: unit, helpText: help)
        }
        runs = registry.makeGauge(descriptor: name("runs", "", "Runs with a stored history."))
        segments = registry.makeGauge(descriptor: name("segments", "", "History segment files."))
        liveBytes = registry.makeGauge(descriptor: name("live", "bytes", "Record bytes of live runs in the history store."))
        totalBytes = registry.makeGauge(descriptor: name("stored", "bytes", "Record bytes in all history segments (live and dead)."))
        compactedSegments = registry.makeGauge(
            descriptor: name("compacted_segments", "", "History segments reclaimed by compaction since the node started."))
        closeWaiters = registry.makeGauge(descriptor: name("close_waiters", "", "Callers waiting for a run to close."))
    }

    func update(_ statistics: HistoryStoreStatistics, waiters: Int) {
        runs.set(Double(statistics.runCount))
        segments.set(Double(statistics.segmentCount))
        liveBytes.set(Double(statistics.liveBytes))
        totalBytes.set(Double(statistics.totalBytes))
        compactedSegments.set(Double(statistics.compactedSegments))
        closeWaiters.set(Double(waiters))
    }
}
