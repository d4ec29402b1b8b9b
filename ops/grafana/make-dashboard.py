#!/usr/bin/python3
"""Writes the Grafana dashboard for Croupier tables (edit the panels here, not the JSON):

    /usr/bin/python3 ops/grafana/make-dashboard.py ops/grafana/croupier-dashboard.json

tests/ops_files.rs checks that every metric it queries is one the daemon exposes."""
import json, sys
ds = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
I = '{instance=~"$instance"}'
DEV = '{instance=~"$instance",kind="device"}'
def q(expr):
    return expr.replace("{I}", I).replace("{DEV}", DEV)
rows = [
    ("Table", [
        ("Ready", [("croupier_ready{I}", "{{instance}}")], "short", "stat", 6, 4, "1 once every device is up and the uplink connected or buffering."),
        ("Devices up", [("sum by (instance) (croupier_component_up{DEV})", "{{instance}}")], "short", "stat", 6, 4, "Readers up (wheel, shoe, RFID, pedal)."),
        ("Clock synchronised", [("croupier_clock_synchronized{I}", "{{instance}}")], "short", "stat", 6, 4, "0: chrony/PTP has not synchronised the box's clock."),
        ("MQTT connected", [("croupier_mqtt_connected{I}", "{{instance}}")], "short", "stat", 6, 4, "The uplink to the studio broker."),
    ]),
    ("Bets and events (SLOs)", [
        ("Bet-window close error", [
            ("histogram_quantile(0.5, sum by (instance, le) (rate(croupier_bet_close_error_seconds_bucket{I}[15m])))", "p50 {{instance}}"),
            ("histogram_quantile(0.99, sum by (instance, le) (rate(croupier_bet_close_error_seconds_bucket{I}[15m])))", "p99 {{instance}}"),
        ], "s", "timeseries", 12, 8, "How late round.close was processed after its deadline. Alert: p99 > 50 ms."),
        ("Input to publish (broker ack)", [
            ("histogram_quantile(0.5, sum by (instance, le) (rate(croupier_input_to_publish_seconds_bucket{I}[5m])))", "p50 {{instance}}"),
            ("histogram_quantile(0.95, sum by (instance, le) (rate(croupier_input_to_publish_seconds_bucket{I}[5m])))", "p95 {{instance}}"),
            ("histogram_quantile(0.99, sum by (instance, le) (rate(croupier_input_to_publish_seconds_bucket{I}[5m])))", "p99 {{instance}}"),
        ], "s", "timeseries", 12, 8, "From a device's input to the broker's acknowledgement of its event. Alert: p95 > 250 ms."),
        ("Outbox backlog", [("croupier_outbox_depth{I}", "depth {{instance}}")], "short", "timeseries", 12, 8, "Events written but not acknowledged by the broker."),
        ("Oldest unacknowledged event", [("croupier_outbox_oldest_age_seconds{I}", "{{instance}}")], "s", "timeseries", 12, 8, "Alert: over 60 s (warning), 300 s (critical)."),
        ("Cross-check holds", [("sum by (instance, reason, source) (increase(croupier_crosscheck_mismatches_total{I}[1h]))", "{{reason}} {{source}} {{instance}}")], "short", "timeseries", 12, 8, "Rounds held because the camera or RFID disagreed with the shoe or wheel (mismatch), or did not confirm (missing_confirmation)."),
        ("Clock error", [("croupier_clock_error_seconds{I}", "{{instance}}")], "s", "timeseries", 12, 8, "The kernel's estimated clock error."),
    ]),
    ("Devices", [
        ("Frames per second", [("rate(croupier_device_frames_total{I}[1m])", "{{device}} {{instance}}")], "short", "timeseries", 8, 8, ""),
        ("Garbled frames", [("increase(croupier_device_errors_total{I}[5m])", "{{device}} {{instance}}")], "short", "timeseries", 8, 8, "Frames counted, logged and skipped."),
        ("Reconnects", [("increase(croupier_device_reconnects_total{I}[15m])", "{{device}} {{instance}}")], "short", "timeseries", 8, 8, ""),
    ]),
    ("Cameras", [
        ("Frame rate", [("croupier_camera_fps{I}", "{{camera}} {{instance}}"), ("croupier_camera_fps_target{I}", "target {{camera}}")], "short", "timeseries", 8, 8, "Alert: under 80 % of the target for a minute."),
        ("Dropped frames", [("rate(croupier_camera_dropped_frames_total{I}[1m])", "{{camera}} {{instance}}")], "short", "timeseries", 8, 8, ""),
        ("Bitrate", [("croupier_camera_bitrate_kbps{I}", "{{camera}} {{instance}}")], "Kbits", "timeseries", 8, 8, ""),
        ("Encoder latency (mean)", [("rate(croupier_encoder_latency_seconds_sum{I}[1m]) / rate(croupier_encoder_latency_seconds_count{I}[1m])", "{{camera}} {{instance}}")], "s", "timeseries", 8, 8, "Time a frame spends in the encoder."),
        ("WebRTC viewers", [("croupier_webrtc_viewers{I}", "{{camera}} {{instance}}")], "short", "timeseries", 8, 8, ""),
        ("WebRTC round trip (worst viewer)", [("croupier_webrtc_rtt_max_seconds{I}", "{{camera}} {{instance}}")], "s", "timeseries", 8, 8, "From webrtcbin's statistics."),
        ("WebRTC packets lost", [("croupier_webrtc_packets_lost{I}", "{{camera}} {{instance}}")], "short", "timeseries", 8, 8, "Summed over the current viewers."),
    ]),
    ("Vision", [
        ("Read time per frame", [
            ("histogram_quantile(0.5, sum by (camera, le) (rate(croupier_vision_read_seconds_bucket{I}[5m])))", "p50 {{camera}}"),
            ("histogram_quantile(0.99, sum by (camera, le) (rate(croupier_vision_read_seconds_bucket{I}[5m])))", "p99 {{camera}}"),
        ], "s", "timeseries", 8, 8, ""),
        ("Rejects", [("rate(croupier_vision_rejects_total{I}[5m])", "{{camera}} {{instance}}")], "short", "timeseries", 8, 8, "Card-shaped things not named (low confidence)."),
        ("Sightings", [("increase(croupier_vision_sightings_total{I}[5m])", "{{camera}} {{instance}}")], "short", "timeseries", 8, 8, "card.seen / pocket.seen sent to the engine."),
    ]),
]
panels = []
y = 0
pid = 1
for row_title, items in rows:
    panels.append({"type": "row", "title": row_title, "id": pid, "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}, "collapsed": False, "panels": []})
    pid += 1
    y += 1
    x = 0
    rowh = 0
    for (title, exprs, unit, kind, w, h, desc) in items:
        if x + w > 24:
            x = 0
            y += rowh
            rowh = 0
        panels.append({
            "type": kind, "title": title, "description": desc, "datasource": ds, "id": pid,
            "gridPos": {"h": h, "w": w, "x": x, "y": y},
            "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
            "options": {},
            "targets": [{"datasource": ds, "expr": q(e), "legendFormat": l, "refId": chr(65 + i)} for i, (e, l) in enumerate(exprs)],
        })
        pid += 1
        x += w
        rowh = max(rowh, h)
    y += rowh
dash = {
    "__inputs": [{"name": "DS_PROMETHEUS", "label": "Prometheus", "type": "datasource", "pluginId": "prometheus", "pluginName": "Prometheus"}],
    "title": "Croupier tables",
    "uid": "croupier-tables",
    "description": "Croupier table daemons: readiness, the SLOs (bet-window close error, input-to-publish latency, outbox backlog), devices, cameras, WebRTC and vision. Alert rules: ops/prometheus/croupier-alerts.yml.",
    "tags": ["croupier", "live-dealer"],
    "timezone": "utc",
    "schemaVersion": 38,
    "version": 1,
    "refresh": "10s",
    "time": {"from": "now-3h", "to": "now"},
    "templating": {"list": [
        {"name": "DS_PROMETHEUS", "type": "datasource", "query": "prometheus", "label": "Prometheus"},
        {"name": "instance", "type": "query", "label": "Table", "datasource": ds,
         "query": {"query": "label_values(croupier_build_info, instance)", "refId": "instance"},
         "definition": "label_values(croupier_build_info, instance)", "includeAll": True, "multi": True, "refresh": 2,
         "current": {"text": "All", "value": "$__all"}},
    ]},
    "annotations": {"list": []},
    "panels": panels,
}
json.dump(dash, open(sys.argv[1], "w"), indent=1)
print(len(panels))
