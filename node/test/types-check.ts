// Compiled (never run) by types.test.js with `tsc --noEmit --strict`: the committed .d.ts
// files describe the API as the tests use it.
import cellgate, {
  Limiter, Policy, ManualClock, Decision, PolicyDecision, Reservation, headers, limitedBody,
  clientKey, RateLimitError, Reason, HeaderStyle,
} from 'cellgate';
import { rateLimit } from 'cellgate/express';
import fastifyPlugin, { CellgateFastifyOptions } from 'cellgate/fastify';

const clock = new ManualClock(0n);
clock.advance(5);
clock.advanceNs(5n);
clock.setNs(10);
const now: bigint = clock.nowNs();

const limiter = new Limiter('100/minute', { burst: 20, clock, maxKeys: 1000, algorithm: 'token_bucket', refill: 'interval', name: 'api', onFull: 'allowUntracked' });
const decision: Decision = limiter.check('user:42', { cost: 2 });
const allowed: boolean = decision.allowed;
const reason: Reason = decision.reason;
const style: HeaderStyle = 'anthropic';
const perDimension: Record<string, string> = headers(decision, { style, nowUnixS: 1 });
const untracked: number = limiter.stats().admittedUntracked;
const numbers: number[] = [decision.limit, decision.remaining, decision.retryAfterMs, decision.resetAfterMs];
limiter.peek(Buffer.from('k'));
limiter.force(new Uint8Array([1, 2]));
limiter.refund('k', { cost: 1 });
limiter.reset('k');
const waited: Promise<Decision> = limiter.acquire('k', { cost: 1, timeoutMs: 100, signal: new AbortController().signal });
const h: Record<string, string> = headers(decision, { style: 'legacy-epoch', nowUnixS: 1 });
const body: string = limitedBody(decision);
const key: Buffer = clientKey('::1', { ipv6PrefixLen: 64 });

const policy = new Policy([{ name: 'rpm', rate: '60/minute' }, { name: 'tpm', rate: '1000/minute', dimension: 'tokens', burst: 2000 }], { clock, onFull: 'deny' });
policy.stats().forEach((entry) => entry.name.toUpperCase() + entry.rejectedFull);
const reserved = policy.reserve('k', { requests: 1, tokens: 100 });
const binding: string = reserved.decision.binding;
if (reserved.reservation !== null) {
  const reservation: Reservation = reserved.reservation;
  const settled: PolicyDecision = reservation.settle({ tokens: 50 });
  settled.decisions.forEach((entry) => entry.name.toUpperCase());
}
policy.check('k', [1, 2]);

const middleware = rateLimit({ limiter, key: (req) => req.url ?? '', cost: () => 1, skip: async () => false, headers: 'ietf', statusCode: 429 });
const options: CellgateFastifyOptions = { limiter: '10/s', headers: false };
const openai: CellgateFastifyOptions = { limiter: policy, headers: 'openai', key: (request) => request.ip, onLimited: (request, reply, limited) => reply.send(limited.reason) };
rateLimit({ limiter, headers: 'anthropic', onLimited: (req, res, next, limited) => res.end(limited.reason) });
const counted = rateLimit({
  limiter: (req) => (req.headers['x-plan'] === 'paid' ? limiter : new Limiter('1/s', { blockMs: 60_000 })),
  count: 'failed',
  allowList: ['127.0.0.1', 'vip'],
  methods: ['POST'],
  headers: 'draft-7',
  onExceeded: (req, decision) => decision.retryAfterMs,
});
const routed: CellgateFastifyOptions = {
  limiter: '10/s',
  hook: 'preHandler',
  countWhen: (status) => status >= 500,
  allowList: (request, key) => request.ip === '127.0.0.1' || key === 'vip',
};

try {
  limiter.check('k');
} catch (error) {
  if (error instanceof RateLimitError) error.reason.toUpperCase();
}

export { counted, routed, now, reason, perDimension, untracked, openai, allowed, numbers, waited, h, body, key, binding, middleware, options, fastifyPlugin, cellgate };

// cellgate/redis (compiled only: the client is never connected here).
import { RedisLimiter, RedisReservation, RedisStats, OutagePolicy, SCRIPT_SHA1 } from 'cellgate/redis';
declare const ioredisLike: { evalshaBuffer(...args: any[]): Promise<unknown>; evalBuffer(...args: any[]): Promise<unknown> };
const redisLimiter = new RedisLimiter('100/minute', { client: ioredisLike, outage: 'closed', timeoutMs: 20, prefix: 'app:', keySecret: new Uint8Array(16) });
const redisPolicy = new RedisLimiter([{ name: 'rpm', rate: '60/minute' }, { name: 'tpm', rate: '1000/minute', dimension: 'tokens' }], { client: ioredisLike });
async function useRedis(): Promise<void> {
  const checked: Decision = await redisLimiter.check('user:42', { cost: 2 }, { nowNs: 5n });
  const outageReason: Reason = checked.reason;
  const { decision: reservedDecision, reservation } = await redisPolicy.reserve('user:42', { requests: 1, tokens: 500 });
  if (reservation !== null) {
    const remote: boolean = reservation.remote;
    const settled: PolicyDecision = await redisPolicy.settle(reservation, { tokens: 120 });
    const binding: string = settled.binding;
    void [remote, binding, reservedDecision];
  }
  const stats: RedisStats = redisLimiter.stats();
  const policyName: OutagePolicy = redisLimiter.outage;
  const sha: string = SCRIPT_SHA1;
  const reservationType: RedisReservation | null = reservation;
  rateLimit({ limiter: redisLimiter });
  void [outageReason, stats, policyName, sha, reservationType];
}
void useRedis;
