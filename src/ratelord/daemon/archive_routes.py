"""``POST /v1/admin/archive``: archive old events now (``ratelord archive``)."""

from __future__ import annotations

from typing import Annotated

import msgspec

from ratelord.asgi.http import HTTPError, Request, Response, Router, json_response
from ratelord.daemon.retention import Archiver, ArchiveReport, RetentionUnavailable
from ratelord.history.instants import DURATION_PATTERN, BadInstant, parse_duration
from ratelord.store.segments import SegmentError

Duration = Annotated[str, msgspec.Meta(pattern=DURATION_PATTERN, max_length=30)]


class ArchiveRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    #: archive events logged longer ago than this (default: ``retention.archive_after``)
    older_than: Duration | None = None


def install(router: Router, archiver: Archiver) -> None:
    async def archive(request: Request) -> Response:
        body = request.decode(ArchiveRequest)
        try:
            older_than = None if body.older_than is None else parse_duration(body.older_than)
            report = await archiver.run(older_than)
        except (RetentionUnavailable, BadInstant) as exc:
            raise HTTPError(409, "retention_not_configured", str(exc)) from None
        except (OSError, SegmentError) as exc:
            raise HTTPError(
                409, "archive_failed", f"nothing was deleted; fix this and run again: {exc}"
            ) from None
        return json_response(report)

    router.add(
        "POST",
        "/v1/admin/archive",
        archive,
        "Move events older than an age into compressed segment files",
        request=ArchiveRequest,
        writes=True,
        response=ArchiveReport,
    )
