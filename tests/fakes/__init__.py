"""Local fakes of provider APIs, for tests and the simulator."""

from tests.fakes.github import DEFAULT_BUCKETS, Bucket, FakeGitHub, RecordedRequest

__all__ = ["DEFAULT_BUCKETS", "Bucket", "FakeGitHub", "RecordedRequest"]
