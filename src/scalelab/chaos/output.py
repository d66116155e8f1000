"""fail-output on any platform: the output topic's max.message.bytes, set and restored
through the Kafka admin API (what the run's clients reach, locally or by a port-forward)."""

from __future__ import annotations

from collections.abc import Callable

from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource

ALTER_TIMEOUT_S = 30.0


def output_limit_setter(bootstrap: str, output_topic: str) -> Callable[[int | None], None]:
    """A `Target.set_output_limit`: a byte limit on the topic, or None to restore its default."""

    def set_output_limit(limit: int | None) -> None:
        admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
        op = AlterConfigOpType.DELETE if limit is None else AlterConfigOpType.SET
        entry = ConfigEntry("max.message.bytes", str(limit or ""), incremental_operation=op)
        resource = ConfigResource(
            ConfigResource.Type.TOPIC, output_topic, incremental_configs=[entry]
        )
        for future in admin.incremental_alter_configs([resource]).values():
            future.result(timeout=ALTER_TIMEOUT_S)

    return set_output_limit
