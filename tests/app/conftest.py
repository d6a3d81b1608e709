"""Fixtures: one in-process moto (Cognito pool) per test module; fresh tables, topic and app per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from moto import mock_aws

from app.main import create_app
from app.settings import Settings
from tests.app.api_testkit import REGION, EmulatorJwks, UserPool, create_api_tables, test_settings


@dataclass
class Emulator:
    """The module's emulated account."""

    dynamodb: Any
    sns: Any
    sqs: Any
    pool: UserPool


@dataclass
class Api:
    """An app under test with its tables, and helpers to call it as a given user."""

    app: FastAPI
    client: TestClient
    settings: Settings
    emulator: Emulator
    jwks: EmulatorJwks
    queue_url: str
    """A queue subscribed (raw delivery) to this app's payments topic: what was published."""
    _any_user: dict[str, str] = field(default_factory=dict)

    def user(self) -> dict[str, str]:
        """A new signed-in user: {"IdToken", "AccessToken", "sub"}."""
        return self.emulator.pool.tokens_for()

    def any_user(self) -> dict[str, str]:
        """One signed-in user reused by tests that do not care who calls."""
        if not self._any_user:
            self._any_user.update(self.user())
        return self._any_user

    @staticmethod
    def auth(tokens: dict[str, str], kind: str = "IdToken") -> dict[str, str]:
        return {"Authorization": f"Bearer {tokens[kind]}"}

    def published(self) -> list[dict[str, Any]]:
        """Messages on the payments topic so far (body text and message attributes)."""
        response = self.emulator.sqs.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
        )
        return response.get("Messages", [])


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    """moto for the whole module, with the user pool that signs the tests' tokens."""
    with mock_aws():
        yield Emulator(
            dynamodb=boto3.client("dynamodb", region_name=REGION),
            sns=boto3.client("sns", region_name=REGION),
            sqs=boto3.client("sqs", region_name=REGION),
            pool=UserPool.create(boto3.client("cognito-idp", region_name=REGION)),
        )


@contextmanager
def running_api(emulator: Emulator, **settings_overrides: Any) -> Iterator[Api]:
    """An app on its own tables and topic, served by a TestClient; `settings_overrides` change its
    Settings (e.g. quota limits, api_docs)."""
    suffix = uuid.uuid4().hex[:8]
    tables = create_api_tables(emulator.dynamodb, suffix=f"-{suffix}")
    topic_arn = emulator.sns.create_topic(Name=f"payments-{suffix}")["TopicArn"]
    queue_url = emulator.sqs.create_queue(QueueName=f"payments-tap-{suffix}")["QueueUrl"]
    queue_arn = emulator.sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    emulator.sns.subscribe(
        TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"}
    )
    settings = test_settings(tables, topic_arn, emulator.pool).model_copy(update=settings_overrides)
    jwks = EmulatorJwks(settings)
    app = create_app(settings, signing_keys=jwks, configure_logs=False)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Api(
            app=app, client=client, settings=settings, emulator=emulator, jwks=jwks, queue_url=queue_url
        )


@pytest.fixture
def api(emulator: Emulator) -> Iterator[Api]:
    """A fresh app on fresh tables and topic (so listings and messages are only this test's)."""
    with running_api(emulator) as fresh:
        yield fresh


@pytest.fixture(scope="module")
def shared_api(emulator: Emulator) -> Iterator[Api]:
    """One app for a module of tests that do not depend on what other tests stored."""
    with running_api(emulator) as shared:
        yield shared
