"""moto's server on 127.0.0.1, for tests that call the real boto3 clients against it.

The server is a real HTTP endpoint in a process of its own, so boto3's whole path runs: signing, request
serialisation, error responses, waiters and connection failures. A test module imports the fixtures it uses:

    from tests.moto_server import aws_env, endpoint  # noqa: F401  (fixtures)

`endpoint` is module scoped: each importing module gets a server of its own, so pytest-xdist workers never
share one.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

REGION = "us-east-1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _answers(url: str) -> bool:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never through a proxy
    try:
        opener.open(url, timeout=1).close()
    except urllib.error.HTTPError:
        return True  # an HTTP error status is still an answer
    except OSError:
        return False
    return True


@contextmanager
def running(log: Path, start_within: float = 20) -> Iterator[str]:
    """moto's server on a free port of 127.0.0.1, its output in `log`; yields its URL, stops it after."""
    port = free_port()
    with log.open("wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + start_within
        while not _answers(url):
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"moto server did not answer at {url}:\n{log.read_text(errors='replace')}")
            time.sleep(0.2)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=5)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """moto's server for the importing module's tests (one per module); its URL."""
    with running(tmp_path_factory.mktemp("moto") / "server.log") as url:
        yield url


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> str:
    """Fake credentials for boto3 (moto accepts any) in the environment; returns the secret access key."""
    secret = f"fake-secret-{uuid.uuid4().hex}"
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    return secret


# ---- clients of the server, and what they sent ------------------------------------------------------


class Calls:
    """The requests a boto3 client sent, as (operation, parameters), recorded by botocore's event hook."""

    def __init__(self) -> None:
        self.made: list[tuple[str, dict]] = []

    def __call__(self, params, model, **_) -> None:
        self.made.append((model.name, dict(params)))

    def of(self, operation: str) -> list[dict]:
        return [params for name, params in self.made if name == operation]


@pytest.fixture
def calls() -> Calls:
    return Calls()


@pytest.fixture
def rds(endpoint: str, aws_env: str, calls: Calls):
    import boto3

    client = boto3.client("rds", endpoint_url=endpoint, region_name=REGION)
    client.meta.events.register("provide-client-params.rds", calls)
    return client


@pytest.fixture
def route53(endpoint: str, aws_env: str):
    import boto3

    return boto3.client("route53", endpoint_url=endpoint, region_name=REGION)


@pytest.fixture
def network(rds, endpoint: str) -> dict:
    """A VPC with two subnets, a security group and an RDS subnet group of the test's own."""
    import boto3

    ec2 = boto3.client("ec2", endpoint_url=endpoint, region_name=REGION)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"{REGION}{zone}")[
            "Subnet"
        ]["SubnetId"]
        for i, zone in ((1, "a"), (2, "b"))
    ]
    suffix = uuid.uuid4().hex[:8]
    group = ec2.create_security_group(GroupName=f"db-{suffix}", Description="db", VpcId=vpc)["GroupId"]
    subnet_group = f"db-subnets-{suffix}"
    rds.create_db_subnet_group(
        DBSubnetGroupName=subnet_group, DBSubnetGroupDescription="db", SubnetIds=subnets
    )
    return {"vpc": vpc, "subnet_group": subnet_group, "security_group": group}
