-- cellgate remote decision script, protocol 1. The argument and record layouts, and the proof
-- that every number below is an exact integer, are in core/src/remote.rs (module docs).
-- KEYS[1]: the record. ARGV[1]: the limiter's parameters. ARGV[2]: this call.
-- Reply: { now (8 bytes), the record before, the record after } ("" for no record).
-- A u64 is held either as a Lua number, an integer below 2^53 (exact in a double), or as four
-- 16-bit limbs, least significant first (any u64). Every operation takes either form.
local B = 65536
local TWO53 = 9007199254740992
local MAX = { 65535, 65535, 65535, 65535 }
local byte, char, floor, unpack = string.byte, string.char, math.floor, unpack

-- The limbs of v.
local function limbs(v)
  if type(v) == 'table' then return v end
  local l1 = v % B
  v = (v - l1) / B
  local l2 = v % B
  v = (v - l2) / B
  local l3 = v % B
  return { l1, l2, l3, (v - l3) / B }
end

-- Limbs as a number when below 2^53.
local function norm(t)
  if t[4] < 32 then return ((t[4] * B + t[3]) * B + t[2]) * B + t[1] end
  return t
end

-- 8 big-endian bytes at s[i..i+7].
local function u64(s, i)
  local b1, b2, b3, b4, b5, b6, b7, b8 = byte(s, i, i + 7)
  if b1 == 0 and b2 < 32 then
    return ((((((b1 * 256 + b2) * 256 + b3) * 256 + b4) * 256 + b5) * 256 + b6) * 256 + b7) * 256 + b8
  end
  return { b7 * 256 + b8, b5 * 256 + b6, b3 * 256 + b4, b1 * 256 + b2 }
end

local function bytes(v)
  local out = {}
  if type(v) == 'number' then
    for k = 8, 1, -1 do
      local b = v % 256
      out[k] = b
      v = (v - b) / 256
    end
  else
    for k = 1, 4 do
      local l = v[k]
      local lo = l % 256
      out[9 - 2 * k] = (l - lo) / 256
      out[10 - 2 * k] = lo
    end
  end
  return char(unpack(out))
end

local function cmp(a, b)
  if type(a) == 'number' and type(b) == 'number' then
    if a < b then return -1 elseif a > b then return 1 end
    return 0
  end
  a, b = limbs(a), limbs(b)
  for i = 4, 1, -1 do
    if a[i] ~= b[i] then
      if a[i] < b[i] then return -1 end
      return 1
    end
  end
  return 0
end

local function is_zero(a) return a == 0 end

-- a + b, saturating at 2^64 - 1.
local function add_sat(a, b)
  if type(a) == 'number' and type(b) == 'number' then
    local s = a + b
    if s < TWO53 then return s end
  end
  a, b = limbs(a), limbs(b)
  local r, c = {}, 0
  for i = 1, 4 do
    local s = a[i] + b[i] + c
    if s >= B then r[i] = s - B; c = 1 else r[i] = s; c = 0 end
  end
  if c == 1 then return MAX end
  return norm(r)
end

-- a - b, or 0 when b >= a.
local function sub_sat(a, b)
  if type(a) == 'number' and type(b) == 'number' then
    if a <= b then return 0 end
    return a - b
  end
  if cmp(a, b) <= 0 then return 0 end
  a, b = limbs(a), limbs(b)
  local r, c = {}, 0
  for i = 1, 4 do
    local s = a[i] - b[i] - c
    if s < 0 then r[i] = s + B; c = 1 else r[i] = s; c = 0 end
  end
  return norm(r)
end

-- a * b, saturating at 2^64 - 1.
local function mul_sat(a, b)
  if type(a) == 'number' and type(b) == 'number' then
    local p = a * b
    if p < TWO53 then return p end
  end
  a, b = limbs(a), limbs(b)
  local col = { 0, 0, 0, 0, 0, 0, 0 }
  for i = 1, 4 do
    if a[i] ~= 0 then
      for j = 1, 4 do
        local k = i + j - 1
        col[k] = col[k] + a[i] * b[j]
      end
    end
  end
  local r, c = {}, 0
  for k = 1, 7 do
    local s = col[k] + c
    local lo = s % B
    r[k] = lo
    c = (s - lo) / B
  end
  if c ~= 0 or r[5] ~= 0 or r[6] ~= 0 or r[7] ~= 0 then return MAX end
  return norm({ r[1], r[2], r[3], r[4] })
end

-- floor(a / d) for d > 0.
local function div(a, d)
  if type(a) == 'number' and type(d) == 'number' then return floor(a / d) end
  a, d = limbs(a), limbs(d)
  local q = { 0, 0, 0, 0 }
  local r = { 0, 0, 0, 0, 0 }
  local dd = { d[1], d[2], d[3], d[4], 0 }
  for limb = 4, 1, -1 do
    local word = a[limb]
    for k = 15, 0, -1 do
      local p = 2 ^ k
      local bit = 0
      if word >= p then bit = 1; word = word - p end
      local c = bit
      for i = 1, 5 do
        local s = r[i] * 2 + c
        if s >= B then r[i] = s - B; c = 1 else r[i] = s; c = 0 end
      end
      local ge = true
      for i = 5, 1, -1 do
        if r[i] ~= dd[i] then ge = r[i] > dd[i]; break end
      end
      if ge then
        local br = 0
        for i = 1, 5 do
          local s = r[i] - dd[i] - br
          if s < 0 then r[i] = s + B; br = 1 else r[i] = s; br = 0 end
        end
        q[limb] = q[limb] + p
      end
    end
  end
  return norm(q)
end

-- v as a double, within a relative 2^-52 of its value (see the proof).
local function float(v)
  if type(v) == 'number' then return v end
  return ((v[4] * B + v[3]) * B + v[2]) * B + v[1]
end

local params, call, key = ARGV[1], ARGV[2], KEYS[1]
if string.byte(params, 1) ~= 1 then
  return redis.error_reply('ERR cellgate: unknown parameter version')
end
local n = string.byte(params, 2)
local interval = string.byte(params, 3) == 1
local single = string.byte(params, 4) == 1
local fingerprint = string.sub(params, 5, 12)
local grace_ms = float(u64(params, 13))
local rules = {}
for i = 1, n do
  local o = 21 + (i - 1) * 40
  rules[i] = { cap = u64(params, o), upc = u64(params, o + 8), tpn = u64(params, o + 16),
    period = u64(params, o + 24), rate = u64(params, o + 32) }
end

local op = string.byte(call, 1)
local now
if string.byte(call, 2) == 1 then
  now = u64(call, 3)
else
  local t = redis.call('TIME')
  local us = tonumber(t[1]) * 1000000 + tonumber(t[2])
  if us >= 9007199254740992 then
    return redis.error_reply('ERR cellgate: TIME beyond 2^53 microseconds')
  end
  now = mul_sat(us, 1000)
end
local a_cost, b_cost = {}, {}
for i = 1, n do
  a_cost[i] = u64(call, 11 + (i - 1) * 16)
  b_cost[i] = u64(call, 19 + (i - 1) * 16)
end

-- The record: fingerprint, then per quota last_ns and missing; last_ns = 2^64 - 1 marks a
-- quota that holds nothing for this key (a full bucket, as a table without the key).
local old = redis.call('GET', key)
if not old then old = '' end
local states = {}
local valid = string.len(old) == 8 + 16 * n and string.sub(old, 1, 8) == fingerprint
local held = false
for i = 1, n do
  if valid then
    local last = u64(old, 9 + (i - 1) * 16)
    if cmp(last, MAX) == 0 then
      states[i] = { absent = true, last = 0, missing = 0 }
    else
      held = true
      states[i] = { absent = false, last = last, missing = u64(old, 17 + (i - 1) * 16) }
    end
  else
    states[i] = { absent = true, last = 0, missing = 0 }
  end
end

local CHECK, PEEK, FORCE, REFUND, RESET, SETTLE = 1, 2, 3, 4, 5, 6

-- Rule::decide: whether admitted, and the state to write (nil: none).
local function decide(q, st, cost, what)
  local at = now
  if cmp(st.last, now) > 0 then at = st.last end
  local refilled
  if interval then
    refilled = mul_sat(sub_sat(div(at, q.period), div(st.last, q.period)), q.rate)
  else
    refilled = mul_sat(sub_sat(at, st.last), q.tpn)
  end
  local m = sub_sat(st.missing, refilled)
  if what == CHECK or what == PEEK then
    local after = add_sat(m, mul_sat(cost, q.upc))
    if cmp(after, q.cap) <= 0 then
      if what == CHECK and not is_zero(cost) then return true, { last = at, missing = after } end
      return true, nil
    end
    return false, nil
  elseif what == FORCE then
    return true, { last = at, missing = add_sat(m, mul_sat(cost, q.upc)) }
  elseif what == REFUND then
    return true, { last = at, missing = sub_sat(m, mul_sat(cost, q.upc)) }
  end
  return true, { last = at, missing = 0 }
end

local changed = false

-- A table's write: a key it does not hold is stored only to hold less than a full bucket.
local function run(i, cost, what)
  local st = states[i]
  local allowed, nxt = decide(rules[i], st, cost, what)
  if nxt and not (st.absent and is_zero(nxt.missing)) then
    states[i] = { absent = false, last = nxt.last, missing = nxt.missing }
    changed = true
  end
  return allowed
end

local ABSENT = bytes(MAX) .. bytes(0)
local function record()
  local parts, any = { fingerprint }, false
  for i = 1, n do
    local st = states[i]
    if st.absent then
      parts[i + 1] = ABSENT
    else
      any = true
      parts[i + 1] = bytes(st.last) .. bytes(st.missing)
    end
  end
  if not any then return '' end
  return table.concat(parts)
end

if op == CHECK then
  if single then
    run(1, a_cost[1], CHECK)
  else
    local saved = {}
    for i = 1, n do saved[i] = states[i] end
    for i = 1, n do
      if not is_zero(a_cost[i]) and not run(i, a_cost[i], CHECK) then
        states = saved
        changed = false
        break
      end
    end
  end
elseif op == PEEK then
  -- nothing is written
elseif op == FORCE or op == REFUND or op == RESET then
  for i = 1, n do run(i, a_cost[i], op) end
elseif op == SETTLE then
  if single then
    run(1, a_cost[1], REFUND)
    if not is_zero(b_cost[1]) then run(1, b_cost[1], FORCE) end
  else
    for i = 1, n do run(i, a_cost[i], REFUND) end
    for i = 1, n do run(i, b_cost[i], FORCE) end
  end
else
  return redis.error_reply('ERR cellgate: unknown operation')
end

local after
if not changed then
  -- The record as it was, as core reads it ('' when it holds nothing of this limiter).
  if held then after = old else after = '' end
else
  after = record()
  if after == '' then
    redis.call('DEL', key)
  else
    -- Expire when every bucket is full again (an upper bound, see the proof), plus the grace.
    local ttl_ns = 0
    for i = 1, n do
      local st = states[i]
      if not st.absent then
        local full_ns
        if interval then
          full_ns = (float(st.missing) / float(rules[i].rate) + 1) * float(rules[i].period)
        else
          full_ns = float(st.missing) / float(rules[i].tpn)
        end
        local lead_ns
        if cmp(st.last, now) >= 0 then
          lead_ns = float(sub_sat(st.last, now))
        else
          lead_ns = -float(sub_sat(now, st.last))
        end
        local t = lead_ns + full_ns
        if t > ttl_ns then ttl_ns = t end
      end
    end
    local ttl_ms = math.floor(ttl_ns / 1000000 * (1 + 2 ^ -40)) + 2 + grace_ms
    if ttl_ms > 4503599627370496 then ttl_ms = 4503599627370496 end
    redis.call('SET', key, after, 'PX', string.format('%.0f', ttl_ms))
  end
end
return { bytes(now), old, after }
