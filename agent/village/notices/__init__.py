"""Notices (公告 / 紧急通知) for the kiosk screen: published by police, admin and village staff
from the web UI or by the county command centre (指挥调度) with the ``notice`` command; an
urgent one takes over the screen until acknowledged there (预警处置)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agent.village.notices.records import AREA, ERROR_MESSAGES, Notice, NoticeInput, Urgency
from agent.village.notices.service import ACK_REPORT, NoticeService
from agent.village.photos import PhotoStore
from agent.village.service import ServiceParts, ServiceSpec


def build(parts: ServiceParts) -> NoticeService:
    photos = PhotoStore(
        parts.database, parts.config.device.data_dir / "photos", area=AREA, clock=parts.clock
    )
    return NoticeService(
        parts.database, parts.audit, parts.report, photos=photos, clock=parts.clock
    )


def notice_command(service: NoticeService, request: Mapping[str, Any]) -> Mapping[str, Any]:
    return service.command(request)


SERVICE = ServiceSpec(AREA, build, ERROR_MESSAGES, commands={"notice": notice_command})

__all__ = [
    "ACK_REPORT",
    "SERVICE",
    "Notice",
    "NoticeInput",
    "NoticeService",
    "Urgency",
]
