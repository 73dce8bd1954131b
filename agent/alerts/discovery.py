"""Home Assistant MQTT discovery: retained config messages describing the kiosk's entities."""

from __future__ import annotations

import json
from dataclasses import dataclass

from agent.alerts.topics import Topics

# HA knows only online/offline; a clean stop ("stopped") must read as unavailable too.
_AVAILABILITY_TEMPLATE = "{{ 'online' if value == 'online' else 'offline' }}"


@dataclass(frozen=True)
class DiscoveredCamera:
    id: str
    name: str


@dataclass(frozen=True)
class _HealthSensor:
    key: str
    name: str
    template: str
    unit: str | None = None
    device_class: str | None = None


_HEALTH_SENSORS = (
    _HealthSensor("uptime", "Uptime", "{{ value_json.system.uptime_seconds }}", "s", "duration"),
    _HealthSensor(
        "cpu_temperature",
        "CPU temperature",
        "{{ value_json.system.cpu_temperature_c | default(none) }}",
        "°C",
        "temperature",
    ),
    _HealthSensor(
        "disk_free",
        "Disk free",
        "{{ value_json.system.disk.free_bytes | default(none) }}",
        "B",
        "data_size",
    ),
    _HealthSensor("outbox_depth", "Outbox depth", "{{ value_json.outbox.depth }}"),
    _HealthSensor(
        "outbox_oldest_age",
        "Outbox oldest message age",
        "{{ value_json.outbox.oldest_age_seconds | default(0, true) }}",
        "s",
        "duration",
    ),
)


def discovery_messages(
    *,
    topics: Topics,
    discovery_prefix: str,
    device_name: str,
    cameras: list[DiscoveredCamera],
    version: str,
) -> list[tuple[str, bytes]]:
    """(topic, payload) pairs to publish retained on every connect."""
    node = topics.device
    device = {
        "identifiers": [f"village_kiosk_{node}"],
        "name": device_name or node,
        "manufacturer": "Village kiosk",
        "model": "Village kiosk agent",
        "sw_version": version,
    }
    common = {
        "device": device,
        "availability": [{"topic": topics.status, "value_template": _AVAILABILITY_TEMPLATE}],
    }
    messages: list[tuple[str, dict[str, object]]] = []
    for camera in cameras:
        label = camera.name or camera.id
        messages.append(
            (
                f"{discovery_prefix}/binary_sensor/{node}/{camera.id}_motion/config",
                {
                    "name": f"{label} motion",
                    "unique_id": f"{node}_{camera.id}_motion",
                    "state_topic": topics.camera_motion(camera.id),
                    "payload_on": "ON",
                    "payload_off": "OFF",
                    "device_class": "motion",
                    **common,
                },
            )
        )
        messages.append(
            (
                f"{discovery_prefix}/camera/{node}/{camera.id}_snapshot/config",
                {
                    "name": f"{label} snapshot",
                    "unique_id": f"{node}_{camera.id}_snapshot",
                    "topic": topics.camera_snapshot(camera.id),
                    **common,
                },
            )
        )
        messages.append(
            (
                f"{discovery_prefix}/sensor/{node}/{camera.id}_state/config",
                {
                    "name": f"{label} state",
                    "unique_id": f"{node}_{camera.id}_state",
                    "state_topic": topics.camera_state(camera.id),
                    **common,
                },
            )
        )
    for sensor in _HEALTH_SENSORS:
        config: dict[str, object] = {
            "name": sensor.name,
            "unique_id": f"{node}_{sensor.key}",
            "state_topic": topics.health,
            "value_template": sensor.template,
            "entity_category": "diagnostic",
            **common,
        }
        if sensor.unit:
            config["unit_of_measurement"] = sensor.unit
        if sensor.device_class:
            config["device_class"] = sensor.device_class
        messages.append((f"{discovery_prefix}/sensor/{node}/{sensor.key}/config", config))
    return [
        (topic, json.dumps(payload, ensure_ascii=False).encode()) for topic, payload in messages
    ]
