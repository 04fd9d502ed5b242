"""The official `mcp` Python SDK (v2) and the Swagger Petstore's operations offered as tools by
`mcp.openapi` (the spec vendored in tests/gateway/fixtures/openapi/).

Run by tests/gateway/mcp_openapi.rs, which starts a fake of the Petstore service (it answers
with what it received) and the gateway, and passes SWITCHBOARD_MCP_URL and SWITCHBOARD_KEY.
"""

import json
import os

import anyio
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

MCP_URL = os.environ["SWITCHBOARD_MCP_URL"]
KEY = os.environ["SWITCHBOARD_KEY"]


async def call(session, name, arguments):
    result = await session.call_tool(name, arguments)
    text = result.content[0].text if result.content else ""
    return result, text


async def main():
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {KEY}"})
    async with http, streamable_http_client(MCP_URL, http_client=http) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            tools = {t.name: t for t in (await session.list_tools()).tools}
            petstore = sorted(n for n in tools if n.startswith("petstore__"))
            # The globs of the config: every *Pet* operation but the upload, and loginUser.
            assert petstore == [
                "petstore__addPet",
                "petstore__deletePet",
                "petstore__findPetsByStatus",
                "petstore__findPetsByTags",
                "petstore__getPetById",
                "petstore__loginUser",
                "petstore__updatePet",
                "petstore__updatePetWithForm",
            ], petstore

            get = tools["petstore__getPetById"]
            assert get.description == "Returns a single pet.", get.description
            assert get.title == "Find pet by ID.", get.title
            assert get.input_schema["required"] == ["petId"], get.input_schema
            assert get.input_schema["properties"]["petId"]["type"] == "integer"
            assert get.annotations.read_only_hint is True, get.annotations
            assert tools["petstore__deletePet"].annotations.destructive_hint is True

            # $refs resolved: the body of addPet is the Pet schema with Category and Tag inside.
            add = tools["petstore__addPet"].input_schema
            pet = add["properties"]["body"]
            assert add["required"] == ["body"], add
            assert pet["required"] == ["name", "photoUrls"], pet
            assert pet["properties"]["category"]["properties"]["name"]["type"] == "string"
            assert pet["properties"]["tags"]["items"]["properties"]["id"]["format"] == "int64"
            assert "$ref" not in json.dumps(add), add
            assert "x-swagger-router-model" not in json.dumps(add), add

            # A path parameter; the service's answer comes back as structured content.
            result, _ = await call(session, "petstore__getPetById", {"petId": 7})
            assert not result.is_error, result
            seen = result.structured_content
            assert seen["method"] == "GET" and seen["path"] == "/api/v3/pet/7", seen

            # A query parameter with its enum, and an exploded array.
            result, _ = await call(session, "petstore__findPetsByStatus", {"status": "sold"})
            assert result.structured_content["query"] == "status=sold", result
            result, _ = await call(session, "petstore__findPetsByTags", {"tags": ["a", "b c"]})
            assert result.structured_content["query"] == "tags=a&tags=b+c", result

            # A JSON body.
            body = {"name": "Rex", "photoUrls": ["http://x/rex.png"], "tags": [{"id": 1, "name": "good"}]}
            result, _ = await call(session, "petstore__addPet", {"body": body})
            seen = result.structured_content
            assert seen["method"] == "POST" and seen["content_type"] == "application/json", seen
            assert json.loads(seen["body"]) == body, seen

            # A header parameter beside a path parameter.
            result, _ = await call(session, "petstore__deletePet", {"petId": 3, "api_key": "owner-key"})
            seen = result.structured_content
            assert seen["method"] == "DELETE" and seen["api_key"] == "owner-key", seen

            # Arguments the schema refuses never reach the service.
            for bad in ({"petId": "seven"}, {}, {"petId": 7, "extra": 1}):
                result, text = await call(session, "petstore__getPetById", bad)
                assert result.is_error and "Invalid arguments" in text, (bad, text)
            result, text = await call(session, "petstore__addPet", {"body": {"name": "no photos"}})
            assert result.is_error and "photoUrls" in text, text

            # The service's error is the tool's error.
            result, text = await call(session, "petstore__getPetById", {"petId": 404})
            assert result.is_error and "HTTP 404" in text, text


anyio.run(main)
print("openapi ok")
