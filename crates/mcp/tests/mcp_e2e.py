"""End to end through the official MCP Python SDK (`mcp` on PyPI) against the AMI `/mcp`
endpoint over streamable HTTP.

Run by crates/mcp/tests/python_client.rs as:
    python3 mcp_e2e.py URL CUSTOMER_KEY SIGNED_CONTRACT_ID

Exits non-zero (with the failing assertion) when anything is off.
"""

from __future__ import annotations

import contextlib
import sys

import anyio
import jsonschema
from mcp import ClientSession, Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

EXPECTED_TOOLS = {
    "ami.search_sim_options", "ami.request_sim_offer", "ami.accept_offer",
    "ami.submit_customer_data", "ami.create_contract", "ami.get_contract_status",
    "ami.confirm_signature_status", "ami.activate_sim_identity", "ami.get_identity_status",
    "ami.cancel_request", "ami.preview_sms", "ami.check_policy", "ami.send_sms", "ami.list_sms", "ami.place_call", "ami.list_calls",
    "ami.get_call", "ami.hangup_call", "ami.set_inbound_sip_uri", "ami.get_limits",
    "ami.update_limits", "ami.get_usage", "ami.get_my_usage", "ami.rotate_agent_token",
    "ami.list_events", "ami.provision_number", "ami.create_webhook", "ami.list_webhooks",
    "ami.delete_webhook",
}


class Tools:
    """One client session with one bearer credential; every call's arguments are checked
    against the tool's advertised input schema before they are sent."""

    def __init__(self, session: ClientSession, schemas: dict[str, dict]):
        self.session = session
        self.schemas = schemas
        self.called: set[str] = set()

    async def call(self, name: str, args: dict):
        schema = self.schemas[name]
        jsonschema.validators.validator_for(schema)(schema).validate(args)
        self.called.add(name)
        return await self.session.call_tool(name, args)

    async def ok(self, name: str, args: dict) -> dict:
        result = await self.call(name, args)
        assert not result.is_error, f"{name} failed: {result.structured_content}"
        assert isinstance(result.structured_content, dict), result
        return result.structured_content

    async def refused(self, name: str, args: dict) -> dict:
        result = await self.call(name, args)
        assert result.is_error, f"{name} was not refused: {result.structured_content}"
        return result.structured_content


def connect(url: str, bearer: str):
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {bearer}"})
    return streamable_http_client(url, http_client=http)


async def open_tools(stack, url: str, bearer: str) -> Tools:
    read, write = await stack.enter_async_context(connect(url, bearer))
    session = await stack.enter_async_context(ClientSession(read, write))
    init = await session.initialize()
    assert init.server_info.name == "ami", init
    listed = await session.list_tools()
    schemas = {t.name: t.input_schema for t in listed.tools}
    assert set(schemas) == EXPECTED_TOOLS, sorted(set(schemas) ^ EXPECTED_TOOLS)
    for name, schema in schemas.items():
        jsonschema.validators.validator_for(schema).check_schema(schema)
        assert schema.get("type") == "object", name
    return Tools(session, schemas)


async def main(url: str, key: str, signed_contract: str) -> None:
    called: set[str] = set()
    async with contextlib.AsyncExitStack() as stack:
        customer = await open_tools(stack, url, key)

        # The schemas are strict: an unknown argument or a wrong type does not validate.
        send_schema = customer.schemas["ami.send_sms"]
        for bad in ({"to": "+34600111222"}, {"to": "+34600111222", "body": "x", "extra": 1},
                    {"to": 34600111222, "body": "x"}):
            try:
                jsonschema.validate(bad, send_schema)
            except jsonschema.ValidationError:
                pass
            else:
                raise AssertionError(f"schema accepted {bad}")

        # The whole contracting flow in one call.
        provisioned = await customer.ok("ami.provision_number", {"agent_name": "e2e", "purpose": "testing"})
        identity = provisioned["mobile_identity"]
        mid, token = identity["mobile_identity_id"], identity["agent_token"]
        assert token.startswith("amiagt_live_"), identity
        assert identity["phone_number"].startswith("+34"), identity
        assert [s["step"] for s in provisioned["steps"]] == [
            "sim_request", "offer_accepted", "customer_data", "contract", "signed", "activated"]

        # The contracting tools one by one.
        options = await customer.ok("ami.search_sim_options", {})
        assert set(options["countries"]) >= {"ES", "CO"}, options
        created = await customer.ok("ami.request_sim_offer", {
            "country": "ES", "sim_type": "eSIM", "capabilities": ["sms", "voice"],
            "agent_name": "Agent01", "purpose": "agent_identity", "max_monthly_price": 10, "currency": "EUR"})
        assert created["offer"]["status"] == "offer_created", created
        simreq, offer = created["sim_request"]["id"], created["offer"]["id"]
        accepted = await customer.ok("ami.accept_offer", {"offer_id": offer})
        assert accepted["status"] == "offer_accepted", accepted
        submitted = await customer.ok("ami.submit_customer_data", {
            "sim_request_id": simreq,
            "customer": {"legal_name": "Acme S.L.", "tax_id": "B00000000", "billing_email": "admin@acme.example",
                         "address": "Madrid", "representative_name": "Ana Rep"}})
        contract = await customer.ok("ami.create_contract", {
            "offer_id": offer, "customer_id": submitted["customer"]["id"]})
        assert contract["status"] == "signature_pending" and "/v1/sign/" in contract["signature_url"], contract
        status = await customer.ok("ami.get_contract_status", {"contract_id": contract["id"]})
        assert status["status"] == "signature_pending", status
        # The owner reads the signing link again, to hand to its representative.
        assert status["signature_url"] == contract["signature_url"], status
        assert status["signing_token"] == contract["signing_token"], status
        confirmed = await customer.ok("ami.confirm_signature_status", {"contract_id": contract["id"]})
        assert confirmed["status"] == "signature_pending", confirmed
        refused = await customer.refused("ami.activate_sim_identity", {"contract_id": contract["id"]})
        assert refused["error"] == "contract_not_signed", refused
        cancelled = await customer.ok("ami.cancel_request", {"sim_request_id": simreq, "reason": "changed_plans"})
        assert cancelled["status"] == "cancelled", cancelled
        # A contract signed by its representative (the harness signed it) activates.
        activated = await customer.ok("ami.activate_sim_identity", {"contract_id": signed_contract})
        assert activated["status"] == "active" and activated["agent_token"].startswith("amiagt_live_"), activated

        # MID administration.
        shown = await customer.ok("ami.get_identity_status", {"mobile_identity_id": mid})
        assert shown["status"] == "active" and "agent_token" not in shown, shown
        inbound = await customer.ok("ami.set_inbound_sip_uri", {
            "mobile_identity_id": mid, "inbound_sip_uri": "sips:agent@voice.example.org:5061"})
        assert inbound["inbound_sip_uri"] == "sips:agent@voice.example.org:5061", inbound
        limits = await customer.ok("ami.get_limits", {"mobile_identity_id": mid})
        assert limits["limits"]["allowed_country_prefixes"] == ["+34"], limits
        updated = await customer.ok("ami.update_limits", {
            "mobile_identity_id": mid, "limits": {"sms_per_hour": 30, "monthly_budget_eur": 50.0}})
        assert updated["limits"]["sms_per_hour"] == 30, updated

        # The agent, in its own session with its own token.
        agent = await open_tools(stack, url, token)
        sent = await agent.ok("ami.send_sms", {"to": "+34 600 111 222", "body": "Hello from AMI"})
        assert sent["status"] == "queued" and sent["to"] == "+34600111222", sent
        listed = await agent.ok("ami.list_sms", {"limit": 10, "direction": "outbound"})
        assert sent["id"] in [m["id"] for m in listed["messages"]], listed
        preview = await agent.ok("ami.preview_sms", {"to": "+34600111222", "body": "Hello \u2014 AMI"})
        assert preview["encoding"] == "UCS-2" and preview["segments"] == 1, preview
        assert preview["ucs2_characters"] == ["\u2014"], preview
        # The dry run gives the verdict the send below gets.
        check = await agent.ok(
            "ami.check_policy", {"channel": "sms", "to": "+4915112345678", "body": "Hallo"})
        assert check["verdict"] == "refuse", check
        blocked = await agent.refused("ami.send_sms", {"to": "+4915112345678", "body": "Hallo"})
        assert blocked["error"] == "country_not_allowed" and blocked["reason"] == "country_not_allowed", blocked
        assert blocked["mid"] == mid, blocked
        assert check["refusal"]["body"]["error"] == blocked["error"], (check, blocked)
        call = await agent.ok("ami.place_call", {"to": "+34600111223", "callback_sip_uri": "sip:brain@voice.example.org"})
        assert call["status"] == "initiated", call
        calls = await agent.ok("ami.list_calls", {})
        assert call["id"] in [c["id"] for c in calls["calls"]], calls
        got = await agent.ok("ami.get_call", {"call_id": call["id"]})
        assert got["id"] == call["id"], got
        hung = await agent.ok("ami.hangup_call", {"call_id": call["id"]})
        assert hung["status"] == "cancelled", hung
        mine = await agent.ok("ami.get_my_usage", {})
        assert mine["usage"]["sms_count_this_hour"] == 1, mine
        # An agent token is no customer key.
        assert (await agent.refused("ami.get_limits", {"mobile_identity_id": mid}))["error"] == "unauthorized"

        usage = await customer.ok("ami.get_usage", {"mobile_identity_id": mid})
        assert usage["usage"]["sms_count_this_hour"] == 1, usage
        events = await customer.ok("ami.list_events", {"mid": mid, "limit": 50})
        actions = {e["action"] for e in events["events"]}
        assert {"sms_queued", "sms_blocked", "mid_activated"} <= actions, actions
        assert "Hello from AMI" not in str(events), "an SMS body reached the audit log"
        # The SSRF guard answers through the tool as it does over REST.
        metadata = await customer.refused(
            "ami.create_webhook",
            {"mobile_identity_id": mid, "url": "http://169.254.169.254/latest", "events": ["*"]},
        )
        assert metadata["error"] == "invalid_url", metadata
        hooks = await customer.ok("ami.list_webhooks", {"mobile_identity_id": mid})
        assert hooks["webhooks"] == [], hooks
        absent = await customer.refused(
            "ami.delete_webhook",
            {"mobile_identity_id": mid, "webhook_id": "wh_01m8k1gmnkj22x0qq7541nn23gzgsb"},
        )
        assert absent["error"] == "webhook_not_found", absent
        rotated = await customer.ok("ami.rotate_agent_token", {"mobile_identity_id": mid})
        assert rotated["revoked_previous"] >= 1, rotated
        gone = await agent.refused("ami.get_my_usage", {})
        assert gone["error"] == "invalid_agent_token", gone

        called = customer.called | agent.called

    missing = EXPECTED_TOOLS - called
    assert not missing, f"tools never exercised: {sorted(missing)}"

    # The newest protocol revision: the SDK's high-level client probes `server/discover`.
    async with Client(connect(url, key), mode="auto") as modern:
        tools = await modern.list_tools()
        assert {t.name for t in tools.tools} == EXPECTED_TOOLS
        result = await modern.call_tool("ami.search_sim_options", {})
        assert not result.is_error, result
        print(f"modern client negotiated {modern.protocol_version}")

    print(f"ok: {len(called)} tools exercised through the MCP Python SDK")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit("usage: mcp_e2e.py URL CUSTOMER_KEY SIGNED_CONTRACT_ID")
    anyio.run(main, *sys.argv[1:])
