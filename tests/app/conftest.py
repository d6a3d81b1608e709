"""Fixtures: one in-process moto (DynamoDB, SNS, SQS, Cognito) per test module, fresh tables per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
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
    topic_arn: str
    queue_url: str


@dataclass
class Api:
    """An app under test with its tables, and helpers to call it as a given user."""

    app: FastAPI
    client: TestClient
    settings: Settings
    emulator: Emulator
    jwks: EmulatorJwks

    def user(self) -> dict[str, str]:
        """A new signed-in user: {"IdToken", "AccessToken", "sub"}."""
        return self.emulator.pool.tokens_for()

    @staticmethod
    def auth(tokens: dict[str, str], kind: str = "IdToken") -> dict[str, str]:
        return {"Authorization": f"Bearer {tokens[kind]}"}


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    """moto for the whole module; a queue subscribed to the payments topic shows what was published."""
    with mock_aws():
        sns = boto3.client("sns", region_name=REGION)
        sqs = boto3.client("sqs", region_name=REGION)
        topic_arn = sns.create_topic(Name="payments")["TopicArn"]
        queue_url = sqs.create_queue(QueueName="payments-tap")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        sns.subscribe(
            TopicArn=topic_arn,
            Protocol="sqs",
            Endpoint=queue_arn,
            Attributes={"RawMessageDelivery": "true"},
        )
        yield Emulator(
            dynamodb=boto3.client("dynamodb", region_name=REGION),
            sns=sns,
            sqs=sqs,
            pool=UserPool.create(boto3.client("cognito-idp", region_name=REGION)),
            topic_arn=topic_arn,
            queue_url=queue_url,
        )


@pytest.fixture
def api(emulator: Emulator) -> Iterator[Api]:
    """A fresh app on fresh tables (so listings see only this test's campaigns)."""
    tables = create_api_tables(emulator.dynamodb, suffix=f"-{uuid.uuid4().hex[:8]}")
    settings = test_settings(tables, emulator.topic_arn, emulator.pool)
    jwks = EmulatorJwks(settings)
    app = create_app(settings, signing_keys=jwks, configure_logs=False)
    emulator.sqs.purge_queue(QueueUrl=emulator.queue_url)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Api(app=app, client=client, settings=settings, emulator=emulator, jwks=jwks)
