// The scheduler's pure parts without a gateway or workers: traffic splitting, model ids and
// version policies, GPU placement, the request queue (priority, aging, length-bucketed batches),
// the cancel token, and the traffic store on a real SQLite state store in a temp dir.
// scheduler.test.ts, batching.test.ts and deployments.test.ts check them through a real gateway;
// these run in a second or two, for `npm run mutate -- scheduler-core`.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { ModelPackage } from '../src/manifest/load.js';
import type { Manifest } from '../src/manifest/schema.js';
import { CancelToken } from '../src/scheduler/cancel.js';
import {
  DeviceAllocator,
  executionProviders,
  placedPackage,
  placementEnv,
  visibleDevices,
} from '../src/scheduler/placement.js';
import {
  itemTokens,
  lengthBucket,
  paddedTokens,
  RequestQueue,
  type QueuedRequest,
  type Unit,
} from '../src/scheduler/request-queue.js';
import { TrafficStore } from '../src/scheduler/traffic-store.js';
import { canaryWeights, TrafficRouter } from '../src/scheduler/traffic.js';
import {
  compareVersions,
  DEFAULT_VERSION_POLICY,
  modelId,
  parseModelId,
  selectVersions,
  splitModelId,
  versionPolicySchema,
} from '../src/scheduler/versions.js';
import { StateStore } from '../src/store/db.js';
import { IsoError } from '../src/errors.js';
import type { GpuProbe } from '../src/telemetry/gpu.js';
import type { WorkItem } from '../src/worker/protocol.js';

describe('traffic router', () => {
  const always = () => true;

  it('smooth weighted round-robin gives exact proportions, interleaved', () => {
    const r = new TrafficRouter({ b: 1, a: 3 });
    const picks = Array.from({ length: 8 }, () => r.pick(always));
    assert.deepEqual(picks, ['a', 'a', 'b', 'a', 'a', 'a', 'b', 'a']);
    const r2 = new TrafficRouter({ x: 5, y: 1, z: 1 });
    assert.deepEqual(
      Array.from({ length: 7 }, () => r2.pick(always)),
      ['x', 'x', 'y', 'x', 'z', 'x', 'x'],
    );
    // Equal weights alternate in name order.
    const r3 = new TrafficRouter({ v2: 1, v1: 1 });
    assert.deepEqual(
      Array.from({ length: 4 }, () => r3.pick(always)),
      ['v1', 'v2', 'v1', 'v2'],
    );
  });

  it('skips versions with no weight, and those not eligible now', () => {
    const r = new TrafficRouter({ a: 1, b: 0, c: -2, d: 1 });
    assert.deepEqual(
      Array.from({ length: 4 }, () => r.pick(always)),
      ['a', 'd', 'a', 'd'],
    );
    assert.deepEqual(
      Array.from({ length: 3 }, () => r.pick((v) => v !== 'a')),
      ['d', 'd', 'd'],
    );
    assert.equal(
      r.pick(() => false),
      undefined,
    );
    assert.equal(
      r.pick(() => false, 'key'),
      undefined,
    );
    assert.equal(new TrafficRouter({}).pick(always), undefined);
    assert.equal(new TrafficRouter({ a: 0 }).pick(always), undefined);
  });

  it('a sticky key always lands on the same version, in proportion over many keys, whatever the input order', () => {
    const r1 = new TrafficRouter({ stable: 90, canary: 10 });
    const r2 = new TrafficRouter({ canary: 10, stable: 90 });
    const counts: Record<string, number> = { stable: 0, canary: 0 };
    for (let i = 0; i < 2000; i++) {
      const k = `user-${i}`;
      const v = r1.pick(always, k)!;
      assert.equal(r1.pick(always, k), v);
      assert.equal(r2.pick(always, k), v);
      counts[v]!++;
    }
    // Hash-based: about 10% (sha256 buckets; exact for these keys).
    assert.ok(counts.canary! > 140 && counts.canary! < 260, JSON.stringify(counts));
    // The bucket of a key: the first 4 bytes of sha256(key) / 2^32, times the total weight.
    // sha256("a") starts ca978112 → 0.791 → with {x: 1, y: 1}: 1.58 → y; with {x: 4, y: 1}: 3.96 → x.
    assert.equal(new TrafficRouter({ x: 1, y: 1 }).pick(always, 'a'), 'y');
    assert.equal(new TrafficRouter({ x: 4, y: 1 }).pick(always, 'a'), 'x');
    assert.equal(new TrafficRouter({ x: 3, y: 1 }).pick(always, 'a'), 'y');
    // Among the eligible only: the total shrinks with them.
    assert.equal(
      new TrafficRouter({ w: 100, x: 4, y: 1 }).pick((v) => v !== 'w', 'a'),
      'x',
    );
    // A sticky pick does not move the round-robin.
    const r = new TrafficRouter({ a: 1, b: 1 });
    r.pick(always, 'k1');
    r.pick(always, 'k2');
    assert.equal(r.pick(always), 'a');
  });

  it('canary weights', () => {
    assert.deepEqual(canaryWeights('v1', 'v2', 10), { v1: 90, v2: 10 });
    assert.deepEqual(canaryWeights('v1', 'v2', 100), { v1: 0, v2: 100 });
  });
});

describe('model ids and versions', () => {
  it('splits and parses name@version', () => {
    assert.deepEqual(splitModelId('promoter'), { name: 'promoter' });
    assert.deepEqual(splitModelId('promoter@2.0.0'), { name: 'promoter', version: '2.0.0' });
    assert.deepEqual(splitModelId('p@'), { name: 'p', version: '' });
    assert.deepEqual(splitModelId('p@1@2'), { name: 'p', version: '1@2' });
    assert.deepEqual(parseModelId('p@1'), { name: 'p', version: '1' });
    assert.deepEqual(parseModelId('p'), { name: 'p' });
    assert.throws(
      () => parseModelId(`${'p'.repeat(100)}@`),
      (e: unknown) =>
        e instanceof IsoError &&
        e.code === 'MODEL_NOT_FOUND' &&
        e.message === `"${'p'.repeat(80)}" names no version after "@"`,
    );
    assert.equal(modelId('p', '1.0'), 'p@1.0');
  });

  it('orders versions numerically where they are numbers', () => {
    const cases: [string, string, number][] = [
      ['1.10.0', '1.9.0', 1],
      ['1.9.0', '1.10.0', -1],
      ['1.0', '1.0', 0],
      ['1.0', '1.0.1', -1],
      ['1.0.1', '1.0', 1],
      ['2', '10', -1],
      ['1.0-beta', '1.0-alpha', 1],
      ['1.0_2', '1.0+1', 1],
      ['a', 'b', -1],
      ['b', 'a', 1],
      ['1a', '2', -1],
      ['10', '9a', -1],
      ['007', '7', 0],
      ['1.2.3', '1.2.30', -1],
      // Parts that Number() would read but are not plain digits compare as text.
      ['1e3', '999', -1],
      ['0x10', '9', -1],
      ['2.0x10', '2.9', -1],
      ['999', '1e3', 1],
      ['9', '0x10', 1],
    ];
    for (const [a, b, want] of cases) assert.equal(compareVersions(a, b), want, `${a} vs ${b}`);
  });

  it('selects versions by policy, newest first', () => {
    const vs = ['1.0', '1.10', '1.9', '2.0', '0.1'];
    assert.deepEqual(selectVersions(vs, { all: true }), ['2.0', '1.10', '1.9', '1.0', '0.1']);
    assert.deepEqual(selectVersions(vs, DEFAULT_VERSION_POLICY), ['2.0']);
    assert.deepEqual(DEFAULT_VERSION_POLICY, { latest: 1 });
    assert.deepEqual(selectVersions(vs, { latest: 3 }), ['2.0', '1.10', '1.9']);
    assert.deepEqual(selectVersions(vs, { specific: ['1.9', '0.1', '9.9'] }), ['1.9', '0.1']);
    assert.deepEqual(vs, ['1.0', '1.10', '1.9', '2.0', '0.1']);
  });

  it('validates version policies', () => {
    for (const ok of [{ latest: 1 }, { latest: 100 }, { specific: ['1'] }, { all: true }])
      assert.equal(versionPolicySchema.safeParse(ok).success, true, JSON.stringify(ok));
    for (const bad of [
      { latest: 0 },
      { latest: 101 },
      { latest: 1.5 },
      { specific: [] },
      { specific: [''] },
      { all: false },
      { latest: 1, all: true },
      {},
    ])
      assert.equal(versionPolicySchema.safeParse(bad).success, false, JSON.stringify(bad));
  });
});

describe('placement', () => {
  const probe = (gpus: { uuid: string; index: number }[]): GpuProbe =>
    ({ snapshot: async () => ({ gpus }) }) as unknown as GpuProbe;

  it("visible devices: the gateway's own CUDA_VISIBLE_DEVICES, else every GPU by UUID", async () => {
    const none = probe([]);
    assert.deepEqual(await visibleDevices({ CUDA_VISIBLE_DEVICES: ' 0, 2 ,,-1,3' }, none), ['0', '2', '3']);
    assert.deepEqual(await visibleDevices({ CUDA_VISIBLE_DEVICES: '' }, probe([{ uuid: 'GPU-a', index: 0 }])), []);
    assert.deepEqual(
      await visibleDevices(
        {},
        probe([
          { uuid: 'GPU-a', index: 0 },
          { uuid: '', index: 1 },
        ]),
      ),
      ['GPU-a', '1'],
    );
  });

  it('hands out the least used devices first, and takes them back once', async () => {
    let asked = 0;
    const alloc = new DeviceAllocator(async () => {
      asked++;
      return ['g0', 'g1', 'g2'];
    });
    const none = await alloc.acquire(0);
    assert.deepEqual(none.devices, []);
    assert.equal(asked, 0);
    const a = await alloc.acquire(2);
    assert.deepEqual(a.devices, ['g0', 'g1']);
    const b = await alloc.acquire(2);
    assert.deepEqual(b.devices, ['g2', 'g0']);
    assert.deepEqual(alloc.usage(), { g0: 2, g1: 1, g2: 1 });
    const c = await alloc.acquire(5);
    assert.deepEqual(c.devices, ['g1', 'g2', 'g0']);
    assert.deepEqual(alloc.usage(), { g0: 3, g1: 2, g2: 2 });
    c.release();
    c.release();
    assert.deepEqual(alloc.usage(), { g0: 2, g1: 1, g2: 1 });
    a.release();
    assert.deepEqual(alloc.usage(), { g0: 1, g2: 1 });
    b.release();
    assert.deepEqual(alloc.usage(), {});
    none.release();
    assert.deepEqual(alloc.usage(), {});
    // Ties broken by pool order.
    const d = await alloc.acquire(1);
    assert.deepEqual(d.devices, ['g0']);
    assert.equal(asked, 4);
    // A lease released after its device was already cleared (never below zero).
    const e = new DeviceAllocator(async () => ['x']);
    const l1 = await e.acquire(1);
    (e as unknown as { users: Map<string, number> }).users.clear();
    l1.release();
    assert.deepEqual(e.usage(), {});
  });

  it("by default hands out the gateway's own CUDA_VISIBLE_DEVICES", async () => {
    const saved = process.env.CUDA_VISIBLE_DEVICES;
    process.env.CUDA_VISIBLE_DEVICES = 'd7,d8';
    try {
      const alloc = new DeviceAllocator();
      assert.deepEqual((await alloc.acquire(1)).devices, ['d7']);
      assert.deepEqual((await alloc.acquire(1)).devices, ['d8']);
    } finally {
      if (saved === undefined) delete process.env.CUDA_VISIBLE_DEVICES;
      else process.env.CUDA_VISIBLE_DEVICES = saved;
    }
  });

  it('placement variables: devices, and the onnx providers (manifest first)', () => {
    const onnx = { runtime: 'onnx', resources: {}, env: { A: '1' } } as unknown as Manifest;
    const python = { runtime: 'python', resources: {}, env: { CUDA_VISIBLE_DEVICES: 'mine' } } as unknown as Manifest;
    const explicit = {
      runtime: 'onnx',
      resources: { execution_providers: ['tensorrt', 'cpu'] },
      env: {},
    } as unknown as Manifest;
    assert.deepEqual(executionProviders(onnx, []), ['cpu']);
    assert.deepEqual(executionProviders(onnx, ['0']), ['cuda', 'cpu']);
    assert.deepEqual(executionProviders(explicit, []), ['tensorrt', 'cpu']);
    assert.deepEqual(placementEnv(onnx, ['0', '1']), {
      CUDA_VISIBLE_DEVICES: '0,1',
      ISOMODEL_ONNX_PROVIDERS: 'cuda,cpu',
    });
    assert.deepEqual(placementEnv(onnx, []), { CUDA_VISIBLE_DEVICES: '', ISOMODEL_ONNX_PROVIDERS: 'cpu' });
    assert.deepEqual(placementEnv(python, ['0']), { CUDA_VISIBLE_DEVICES: '0' });
    const pkg = { dir: '/m', manifest: onnx } as unknown as ModelPackage;
    const placed = placedPackage(pkg, ['3']);
    assert.equal(placed.dir, '/m');
    assert.deepEqual(placed.manifest.env, { CUDA_VISIBLE_DEVICES: '3', ISOMODEL_ONNX_PROVIDERS: 'cuda,cpu', A: '1' });
    assert.deepEqual(onnx.env, { A: '1' });
    // The manifest's own env wins over placement.
    assert.deepEqual(placedPackage({ dir: '/p', manifest: python } as unknown as ModelPackage, ['0']).manifest.env, {
      CUDA_VISIBLE_DEVICES: 'mine',
    });
  });
});

describe('cancel token', () => {
  it('calls each listener once on abort, not removed ones, and none added after', () => {
    const t = new CancelToken();
    const calls: string[] = [];
    const a = () => calls.push('a');
    const b = () => calls.push('b');
    const c = () => calls.push('c');
    t.addEventListener('abort', a);
    t.addEventListener('abort', b);
    t.addEventListener('abort', c);
    t.removeEventListener('abort', b);
    t.removeEventListener('abort', () => {});
    assert.equal(t.aborted, false);
    t.abort();
    assert.equal(t.aborted, true);
    assert.deepEqual(calls, ['a', 'c']);
    t.abort();
    assert.deepEqual(calls, ['a', 'c']);
    t.addEventListener('abort', a);
    t.abort();
    assert.deepEqual(calls, ['a', 'c']);
    // Removing the only listener leaves none.
    const u = new CancelToken();
    u.addEventListener('abort', a);
    u.removeEventListener('abort', a);
    u.abort();
    assert.deepEqual(calls, ['a', 'c']);
  });
});

interface Req extends QueuedRequest {
  id: string;
}
const seq = (n: number): WorkItem => ({ id: 'i', sequence: 'A'.repeat(n) }) as unknown as WorkItem;
function req(id: string, lengths: number[], over: Partial<Req> = {}): Req {
  return { id, task: 't', items: lengths.map(seq), priority: 0, enqueuedAt: 0, stream: false, done: false, ...over };
}
const ids = (units: Unit<Req>[]) => units.map((u) => `${u.req.id}${u.index}`);

describe('request queue', () => {
  it('length buckets are powers of two; padding is counted to the longest item', () => {
    const cases: [number, number][] = [
      [0, 0],
      [1, 0],
      [2, 1],
      [3, 2],
      [4, 2],
      [5, 3],
      [8, 3],
      [9, 4],
      [1024, 10],
      [1025, 11],
    ];
    for (const [t, b] of cases) assert.equal(lengthBucket(t), b, String(t));
    const u = (tokens: number) => ({ tokens }) as Unit;
    assert.deepEqual(paddedTokens([u(3), u(10), u(5)]), { padded: 30, padding: 12 });
    assert.deepEqual(paddedTokens([]), { padded: 0, padding: 0 });
  });

  it('weighs items by residues, characters or 1', () => {
    assert.equal(itemTokens({ sequence: 'ACGT' } as WorkItem), 4);
    assert.equal(itemTokens({ sequence: '' } as WorkItem), 0);
    assert.equal(itemTokens({ input: 'hello' } as WorkItem), 5);
    assert.equal(
      itemTokens({
        input: { messages: [{ content: 'ab' }, { content: 'cde' }, { content: 5 }] },
      } as unknown as WorkItem),
      5,
    );
    assert.equal(itemTokens({ input: { messages: 'x' } } as unknown as WorkItem), 1);
    assert.equal(itemTokens({ input: { a: 1 } } as unknown as WorkItem), 1);
    assert.equal(itemTokens({ input: null } as unknown as WorkItem), 1);
    assert.equal(itemTokens({ input: [1, 2, 3] } as unknown as WorkItem), 1);
  });

  it("bounds its capacity, keeps a request's items together, orders by priority then arrival", () => {
    const q = new RequestQueue<Req>(5, 1000);
    assert.equal(q.capacity, 5);
    assert.equal(q.agingMs, 1000);
    assert.equal(new RequestQueue<Req>(1).agingMs, 1000);
    assert.equal(q.length, 0);
    assert.equal(q.peek(), undefined);
    assert.equal(q.hasRoomFor(5), true);
    assert.equal(q.hasRoomFor(6), false);
    q.push(req('a', [1, 1], { enqueuedAt: 100 }));
    q.push(req('b', [1], { enqueuedAt: 200, priority: 1 }));
    q.push(req('c', [1], { enqueuedAt: 300 }));
    assert.equal(q.length, 4);
    assert.equal(q.hasRoomFor(1), true);
    assert.equal(q.hasRoomFor(2), false);
    // b (key 200 - 1000) before a (100) before c (300).
    assert.deepEqual(ids(q.takeBatch({ maxItems: 10, maxTokens: Infinity })), ['b0', 'a0', 'a1', 'c0']);
    assert.equal(q.length, 0);
  });

  it('aging: a long wait outweighs a priority level; equal keys stay FIFO', () => {
    const q = new RequestQueue<Req>(100, 1000);
    q.push(req('old', [1], { enqueuedAt: 0 }));
    q.push(req('hi', [1], { enqueuedAt: 1500, priority: 1 })); // key 500: after old (0)
    q.push(req('tie', [1], { enqueuedAt: 1000, priority: 1 })); // key 0: ties with old, after it
    q.push(req('first', [1], { enqueuedAt: 999, priority: 1 })); // key -1
    assert.deepEqual(ids(q.takeBatch({ maxItems: 10, maxTokens: Infinity })), ['first0', 'old0', 'tie0', 'hi0']);
    // Strict priority (agingMs 0): priority wins over any wait.
    const s = new RequestQueue<Req>(100, 0);
    s.push(req('old', [1], { enqueuedAt: 0 }));
    s.push(req('hi', [1], { enqueuedAt: 1_700_000_000_000, priority: 1 }));
    s.push(req('low', [1], { enqueuedAt: 5, priority: -1 }));
    s.push(req('old2', [1], { enqueuedAt: 1 }));
    assert.deepEqual(ids(s.takeBatch({ maxItems: 10, maxTokens: Infinity })), ['hi0', 'old0', 'old20', 'low0']);
  });

  it("batches only the head's task; a streaming request goes alone", () => {
    const q = new RequestQueue<Req>(100);
    q.push(req('a', [1], { enqueuedAt: 1 }));
    q.push(req('x', [1], { enqueuedAt: 2, task: 'other' }));
    q.push(req('s', [1, 1], { enqueuedAt: 3, stream: true }));
    q.push(req('b', [1], { enqueuedAt: 4 }));
    assert.deepEqual(q.plan({ maxItems: 10, maxTokens: Infinity }), { positions: [0, 4], full: false });
    assert.deepEqual(ids(q.takeBatch({ maxItems: 10, maxTokens: Infinity })), ['a0', 'b0']);
    assert.deepEqual(ids(q.takeBatch({ maxItems: 10, maxTokens: Infinity })), ['x0']);
    q.push(req('c', [1], { enqueuedAt: 5 }));
    // Head is the streaming request: only its own items.
    assert.deepEqual(ids(q.takeBatch({ maxItems: 10, maxTokens: Infinity })), ['s0', 's1']);
    assert.deepEqual(ids(q.takeBatch({ maxItems: 10, maxTokens: 100 })), ['c0']);
    assert.deepEqual(q.takeBatch({ maxItems: 10, maxTokens: Infinity }), []);
    assert.deepEqual(q.plan({ maxItems: 10, maxTokens: 5 }), { positions: [], full: false });
  });

  it('stops at max items and says when the batch is full', () => {
    const q = new RequestQueue<Req>(100);
    q.push(req('a', [1, 1, 1]));
    assert.deepEqual(q.plan({ maxItems: 2, maxTokens: Infinity }), { positions: [0, 1], full: true });
    assert.deepEqual(q.plan({ maxItems: 3, maxTokens: Infinity }), { positions: [0, 1, 2], full: true });
    assert.deepEqual(q.plan({ maxItems: 4, maxTokens: Infinity }), { positions: [0, 1, 2], full: false });
    assert.deepEqual(q.plan({ maxItems: 1, maxTokens: Infinity }), { positions: [0], full: true });
    assert.deepEqual(q.plan({ maxItems: 2, maxTokens: 100 }), { positions: [0, 1], full: true });
    assert.deepEqual(q.plan({ maxItems: 3, maxTokens: 3 }), { positions: [0, 1, 2], full: true });
    assert.deepEqual(q.plan({ maxItems: 4, maxTokens: 4 }), { positions: [0, 1, 2], full: false });
    assert.deepEqual(q.plan({ maxItems: 4, maxTokens: 5 }), { positions: [0, 1, 2], full: false });
  });

  it("with a token budget: the head's length bucket first, then the nearest, within the padded budget", () => {
    const q = new RequestQueue<Req>(100);
    // Head 10 tokens (bucket 4); then 100 (7), 3 (2), 12 (4), 9 (4), 40 (6), 5 (3), 6 (3).
    q.push(req('r', [10, 100, 3, 12, 9, 40, 5, 6]));
    // Budget 60: head's bucket (12, 9) → 3 × 12 = 36; then bucket 3 (5, 6) → 5 × 12 = 60; nothing else fits.
    assert.deepEqual(q.plan({ maxItems: 10, maxTokens: 60 }), { positions: [0, 3, 4, 6, 7], full: true });
    // Budget 70: same; one more of 12 would be 72 > 70, so full.
    assert.deepEqual(q.plan({ maxItems: 10, maxTokens: 70 }), { positions: [0, 3, 4, 6, 7], full: true });
    // Budget 72: also 3 fits (6 × 12 = 72).
    assert.deepEqual(q.plan({ maxItems: 10, maxTokens: 72 }), { positions: [0, 2, 3, 4, 6, 7], full: true });
    // Budget 84: 7 × 12 = 84 would fit another 12-token item, but none is left that fits; not full.
    assert.deepEqual(q.plan({ maxItems: 10, maxTokens: 84 }), { positions: [0, 2, 3, 4, 6, 7], full: false });
    // A generous budget takes the longer ones too, bucket 6 before bucket 7.
    assert.deepEqual(q.plan({ maxItems: 10, maxTokens: 800 }), { positions: [0, 1, 2, 3, 4, 5, 6, 7], full: true });
    assert.deepEqual(q.plan({ maxItems: 10, maxTokens: 900 }), { positions: [0, 1, 2, 3, 4, 5, 6, 7], full: false });
    assert.deepEqual(q.plan({ maxItems: 7, maxTokens: 800 }), { positions: [0, 2, 3, 4, 5, 6, 7], full: true });
    // The head alone when nothing else fits, even if the head itself is over the budget.
    assert.deepEqual(q.plan({ maxItems: 10, maxTokens: 5 }), { positions: [0], full: true });
    // Takes the chosen units out (not a prefix), the rest stay in order.
    assert.deepEqual(ids(q.takeBatch({ maxItems: 10, maxTokens: 60 })), ['r0', 'r3', 'r4', 'r6', 'r7']);
    assert.deepEqual(ids(q.takeBatch({ maxItems: 10, maxTokens: Infinity })), ['r1', 'r2', 'r5']);
  });

  it('without a budget, items join in queue order whatever their length', () => {
    const q = new RequestQueue<Req>(100);
    q.push(req('r', [1, 100, 1]));
    assert.deepEqual(q.plan({ maxItems: 2, maxTokens: Infinity }), { positions: [0, 1], full: true });
    // With a budget the head's bucket comes first.
    assert.deepEqual(q.plan({ maxItems: 2, maxTokens: 1000 }), { positions: [0, 2], full: true });
  });

  it('the nearest bucket first, whatever the queue order', () => {
    const q = new RequestQueue<Req>(100);
    // Head 6 tokens (bucket 3); a 40-token item (bucket 6) queued before a 7-token one (bucket 3).
    q.push(req('r', [6, 40, 7]));
    assert.deepEqual(q.plan({ maxItems: 2, maxTokens: 1000 }), { positions: [0, 2], full: true });
    const p = new RequestQueue<Req>(100);
    p.push(req('r', [6, 7, 40]));
    assert.deepEqual(p.plan({ maxItems: 2, maxTokens: 1000 }), { positions: [0, 1], full: true });
  });

  it('takes a batch that is not a prefix, whatever its size', () => {
    const q = new RequestQueue<Req>(100);
    q.push(req('a', [1], { enqueuedAt: 1 }));
    q.push(req('x', [1, 1], { enqueuedAt: 2, task: 'other' }));
    q.push(req('b', [1], { enqueuedAt: 3 }));
    assert.deepEqual(q.plan({ maxItems: 10, maxTokens: Infinity }).positions, [0, 3]);
    assert.deepEqual(ids(q.takeBatch({ maxItems: 10, maxTokens: Infinity })), ['a0', 'b0']);
    assert.deepEqual(ids(q.takeBatch({ maxItems: 10, maxTokens: Infinity })), ['x0', 'x1']);
  });

  it('equally near buckets: the shorter first', () => {
    const q = new RequestQueue<Req>(100);
    // Head 6 (bucket 3); 16 (bucket 4) queued before 3 (bucket 2): both one away, bucket 2 first.
    q.push(req('r', [6, 16, 3]));
    assert.deepEqual(q.plan({ maxItems: 2, maxTokens: 1000 }), { positions: [0, 2], full: true });
  });

  it('a batch taken as a prefix of the queue', () => {
    const q = new RequestQueue<Req>(100);
    q.push(req('a', [4, 4]));
    q.push(req('b', [4], { task: 'u' }));
    q.push(req('c', [4]));
    assert.deepEqual(ids(q.takeBatch({ maxItems: 2, maxTokens: 100 })), ['a0', 'a1']);
    assert.deepEqual(ids(q.takeBatch({ maxItems: 2, maxTokens: 100 })), ['b0']);
    assert.deepEqual(ids(q.takeBatch({ maxItems: 2, maxTokens: 100 })), ['c0']);
  });

  it('scans at most 4096 items past the head', () => {
    const q = new RequestQueue<Req>(10_000);
    q.push(req('head', [1], { enqueuedAt: 0 }));
    for (let i = 0; i < 4095; i++) q.push(req(`o${i}`, [1], { enqueuedAt: 1, task: 'other' }));
    q.push(req('far', [1], { enqueuedAt: 2 }));
    assert.deepEqual(q.plan({ maxItems: 10, maxTokens: Infinity }).positions, [0]);
    assert.deepEqual(q.plan({ maxItems: 10, maxTokens: 100 }).positions, [0]);
    const r = new RequestQueue<Req>(10_000);
    r.push(req('head', [1], { enqueuedAt: 0 }));
    for (let i = 0; i < 4094; i++) r.push(req(`o${i}`, [1], { enqueuedAt: 1, task: 'other' }));
    r.push(req('near', [1], { enqueuedAt: 2 }));
    assert.deepEqual(r.plan({ maxItems: 10, maxTokens: Infinity }).positions, [0, 4095]);
    assert.deepEqual(r.plan({ maxItems: 10, maxTokens: 100 }).positions, [0, 4095]);
  });

  it('removes a request and drains the rest', () => {
    const q = new RequestQueue<Req>(100);
    const a = req('a', [1, 1], { enqueuedAt: 1 });
    const b = req('b', [1], { enqueuedAt: 2 });
    const c = req('c', [1, 1], { enqueuedAt: 3 });
    q.push(a);
    q.push(b);
    q.push(c);
    q.remove(b);
    assert.equal(q.length, 4);
    assert.deepEqual(q.peek()?.req, a);
    assert.deepEqual(q.drainAll(), [a, c]);
    assert.equal(q.length, 0);
    assert.deepEqual(q.drainAll(), []);
  });

  it('inserts behind equal keys and in front of larger ones', () => {
    const q = new RequestQueue<Req>(100);
    q.push(req('a', [1], { enqueuedAt: 10 }));
    q.push(req('b', [1], { enqueuedAt: 30 }));
    q.push(req('c', [1, 1], { enqueuedAt: 20 }));
    q.push(req('d', [1], { enqueuedAt: 10 }));
    q.push(req('e', [1], { enqueuedAt: 5 }));
    assert.deepEqual(ids(q.takeBatch({ maxItems: 10, maxTokens: Infinity })), ['e0', 'a0', 'd0', 'c0', 'c1', 'b0']);
    assert.equal(q.peek(), undefined);
    q.push(req('k', [7]));
    assert.deepEqual({ ...q.peek()!, req: q.peek()!.req.id }, { req: 'k', index: 0, tokens: 7, key: 0 });
  });
});

describe('traffic store', () => {
  const dir = mkdtempSync(join(tmpdir(), 'isomodel-scheduler-unit-'));
  const store = new StateStore(dir);
  after(() => {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("saves, loads, updates and deletes a model's routing, keeping the last 20 defaults", () => {
    const t = new TrafficStore(store);
    assert.deepEqual(t.load(), new Map());
    t.save('promoter', { defaultVersion: '2', weights: { '1': 90, '2': 10 }, history: ['1'] });
    t.save('bare', { history: [] });
    assert.deepEqual(
      t.load(),
      new Map<string, unknown>([
        ['promoter', { defaultVersion: '2', weights: { '1': 90, '2': 10 }, history: ['1'] }],
        ['bare', { defaultVersion: undefined, weights: undefined, history: [] }],
      ]),
    );
    const history = Array.from({ length: 25 }, (_, i) => `v${i}`);
    t.save('promoter', { history });
    assert.deepEqual(t.load().get('promoter'), {
      defaultVersion: undefined,
      weights: undefined,
      history: history.slice(5),
    });
    const row = store.db.prepare("SELECT updated_at FROM model_traffic WHERE name = 'promoter'").get() as {
      updated_at: string;
    };
    assert.ok(Math.abs(Date.parse(row.updated_at) - Date.now()) < 60_000);
    t.delete('promoter');
    assert.deepEqual([...t.load().keys()], ['bare']);
    // Its migrations are tracked under its own namespace, apart from other features'.
    assert.deepEqual(store.db.prepare("SELECT version FROM schema_migrations WHERE namespace = 'traffic'").get(), {
      version: 1,
    });
    // A second store on the same database sees the same table (migrated once).
    assert.deepEqual([...new TrafficStore(store).load().keys()], ['bare']);
  });
});
