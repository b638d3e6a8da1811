-- wrk script: POST /api/permission/authorize with an N-item batch in Backstage's format
-- (/work/shared/reference/backstage-permissions.md §2.2: {"items":[{id, permission, resourceRef?}]}).
--
--   STAGEDOOR_TOKEN=<jwt> wrk -t1 -c64 -d10s --latency -s bench/authorize.lua \
--       http://127.0.0.1:PORT/api/permission/authorize -- 50 [SVC]
--
-- N (default 1) is the batch size, SVC (default 500) the generated service whose role the
-- token's user is in (bench/gen.py: role r{SVC} allows svc{SVC}.entity.read to
-- group:default/g{SVC}). The token is a raw user token, a "direct" caller, so every resource
-- permission carries a resourceRef (Backstage refuses direct resource requests without one).
-- Item i of the batch, so the policy answers a mix of ALLOW and DENY and never CONDITIONAL
-- (a CONDITIONAL with a resourceRef would need the owning plugin's apply-conditions):
--   i = 1, 2, 4, 5, 7, …  resource svc{SVC}.entity.read on component:default/c{i} → ALLOW
--   i % 3 == 0            resource svc{i}.entity.read on component:default/c{i}   → DENY (no role)
--   i % 10 == 0           basic    catalog.location.read                          → DENY
-- so the 1-item batch is one ALLOW. wrk counts any non-2xx answer under "Non-2xx".

local token = os.getenv("STAGEDOOR_TOKEN")

local function resource_item(i, svc)
  return string.format(
    '{"id":"00000000-0000-4000-8000-%012d","permission":{"type":"resource","name":"svc%s.entity.read",'
      .. '"attributes":{"action":"read"},"resourceType":"svc%s-entity"},"resourceRef":"component:default/c%d"}',
    i, svc, svc, i)
end

local function basic_item(i)
  return string.format(
    '{"id":"00000000-0000-4000-8000-%012d","permission":{"type":"basic","name":"catalog.location.read",'
      .. '"attributes":{"action":"read"}}}',
    i)
end

-- The request body for a batch of n items.
local function batch(n, svc)
  local items = {}
  for i = 1, n do
    if i % 10 == 0 then
      items[i] = basic_item(i)
    elseif i % 3 == 0 then
      items[i] = resource_item(i, tostring(i))
    else
      items[i] = resource_item(i, svc)
    end
  end
  return '{"items":[' .. table.concat(items, ",") .. "]}"
end

function init(args)
  local n = tonumber(args[1] or "1")
  local svc = args[2] or "500"
  wrk.method = "POST"
  wrk.body = batch(n, svc)
  wrk.headers["Content-Type"] = "application/json"
  if token and token ~= "" then
    wrk.headers["Authorization"] = "Bearer " .. token
  end
end
