"""The interpreter lock is released while a batch runs: two threads enrich
in parallel faster than one thread does the same work, and Python code keeps
running while another thread is inside a batch. Run alone by meson
(is_parallel: false): the machine has 2 cores."""
import hashlib
import os
import sys
import threading
import time
import unittest

import enrich

from _support import UNDER_ASAN, UNDER_VALGRIND, TempDirTestCase


def make_batch(n_events, n_products):
    lines = []
    for i in range(n_events):
        lines.append(b'{"eventId":"evt-%d","productId":"P-%05d","quantity":%d,'
                     b'"timestamp":"2024-01-15T10:%02d:00Z","payload":"%s"}'
                     % (i, i % (n_products + n_products // 10), i % 7, i % 60, b"x" * 64))
    return b"\n".join(lines) + b"\n"


@unittest.skipIf(UNDER_ASAN or UNDER_VALGRIND,
                 "timings are meaningless under ASan/valgrind instrumentation")
class GilTest(TempDirTestCase):
    N_PRODUCTS = 2000
    N_EVENTS = 500          # events per batch (output stays in cache)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        path = os.path.join(cls.class_dir, "big.mdb")
        items = b"".join(b'{"productId":"P-%05d","productName":"Product %d","category":"C%d",'
                         b'"price":%d.99}\n' % (i, i, i % 13, i) for i in range(cls.N_PRODUCTS))
        with enrich.Store(path, create=True) as s:
            s.load("products", items, key="productId")
        cls.store = enrich.Store(path)
        cls.pipeline = enrich.Pipeline(cls.store)
        cls.batch = make_batch(cls.N_EVENTS, cls.N_PRODUCTS)

    @classmethod
    def tearDownClass(cls):
        cls.store.close()
        super().tearDownClass()

    def work(self, n):
        ctx = self.pipeline.context()
        for _ in range(n):
            r = ctx.run(self.batch)
        self.assertEqual(len(r), self.N_EVENTS)
        ctx.close()

    @staticmethod
    def serial(work, n):
        t0 = time.perf_counter()
        work(2 * n)
        return time.perf_counter() - t0

    @staticmethod
    def parallel(work, n):
        threads = [threading.Thread(target=work, args=(n,)) for _ in range(2)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return time.perf_counter() - t0

    def test_two_threads_beat_one(self):
        if (os.cpu_count() or 1) < 2:
            self.skipTest("needs 2 cores")
        # Size N so the serial run (2N batches) takes about one second.
        t0 = time.perf_counter()
        self.work(5)
        n = max(5, int(0.5 / ((time.perf_counter() - t0) / 5)))
        # Control: a stdlib call known to release the GIL (sha256 of 1 MiB),
        # measured in the same rounds. If it cannot run in parallel either,
        # other processes hold the cores and this machine cannot tell.
        blob = os.urandom(1 << 20)

        def hashing(k):
            for _ in range(k):
                hashlib.sha256(blob).digest()
        t0 = time.perf_counter()
        hashing(20)
        k = max(20, int(0.5 / ((time.perf_counter() - t0) / 20)))
        # Noise only ever slows a run down: keep the best of each kind and
        # stop once the answer is clear.
        best = {"ours": [float("inf")] * 2, "control": [float("inf")] * 2}
        for attempt in range(8):
            for name, work, m in (("ours", self.work, n), ("control", hashing, k)):
                b = best[name]
                b[0] = min(b[0], self.serial(work, m))
                b[1] = min(b[1], self.parallel(work, m))
            if attempt >= 2 and best["ours"][1] < 0.7 * best["ours"][0]:
                break
        serial, par = best["ours"]
        ratio = par / serial
        control = best["control"][1] / best["control"][0]
        print(f"\n{2 * n} batches of {self.N_EVENTS} events: serial {serial:.3f} s, "
              f"2 threads {par:.3f} s, ratio {ratio:.2f} (speed-up {serial / par:.2f}x); "
              f"{serial / (2 * n) * 1e3:.3f} ms per batch, "
              f"{serial / (2 * n * self.N_EVENTS) * 1e9:.0f} ns per event; "
              f"control (sha256) ratio {control:.2f}; {attempt + 1} rounds")
        # The control shows what this machine can do right now: when even a
        # GIL-free stdlib call gains little from a second thread, other
        # processes hold the cores and a wall-clock verdict would be noise.
        if ratio >= 0.9 and control >= 0.75:
            self.skipTest(f"the machine is busy: even the control got ratio {control:.2f} "
                          f"(ours {ratio:.2f})")
        # "Faster" with a margin that noise on a shared 2-core machine does
        # not eat; the deterministic proof is test_python_runs_during_a_batch.
        self.assertLess(ratio, 0.9, "two threads were not faster: is the GIL released?")

    # The batch of test_python_runs_during_a_batch grows to at most this.
    MAX_LONG_BATCH_BYTES = 1 << 30

    def long_batch(self, ctx, seconds):
        """The class batch repeated until one run of it takes at least
        `seconds` on this machine now: (batch, seconds one run took). Each
        try aims at 1.5x the target from the rate just measured, and at
        least doubles."""
        copies = 8
        while True:
            big = self.batch * copies
            t0 = time.perf_counter()
            ctx.run(big)
            took = time.perf_counter() - t0
            if took >= seconds:
                return big, took
            if len(big) >= self.MAX_LONG_BATCH_BYTES:
                self.fail(f"a batch of {len(big)} bytes took only {took:.3f} s: "
                          f"cannot make one last {seconds:.3f} s")
            aim = int(copies * 1.5 * seconds / max(took, 1e-4))
            copies = min(max(2 * copies, min(aim, 64 * copies)),
                         self.MAX_LONG_BATCH_BYTES // len(self.batch))

    def test_python_runs_during_a_batch(self):
        # While one thread is inside a long enrich call, a pure-Python thread
        # keeps counting only if the call released the GIL. With the GIL
        # held, the counter could advance at most a switch interval or two
        # around the call; released, it advances for most of the call even
        # on a busy machine. The call must be long next to the switch
        # interval for the two cases to differ: the batch is grown until
        # one call takes 40 switch intervals (0.2 s by default) here.
        switch = sys.getswitchinterval()
        ctx = self.pipeline.context()
        big, calibrated = self.long_batch(ctx, 40 * switch)
        box = [0]
        done = threading.Event()

        def count():
            while not done.is_set():
                box[0] += 1
        t = threading.Thread(target=count)
        t.start()
        time.sleep(0.1)                 # the counter alone: its rate
        t0, n0 = time.perf_counter(), box[0]
        time.sleep(0.2)
        rate = (box[0] - n0) / (time.perf_counter() - t0)
        before = box[0]
        t0 = time.perf_counter()
        ctx.run(big)
        call = time.perf_counter() - t0
        during = box[0] - before
        done.set()
        t.join()
        ctx.close()
        expected = rate * call
        held = 2 * switch / call        # the counter's share if the GIL were held
        print(f"\nbatch of {len(big) // len(self.batch) * self.N_EVENTS} events "
              f"(calibrated {calibrated:.3f} s): during a {call:.3f} s call Python counted "
              f"{during} ({during / expected:.0%} of its solo rate; held, it could not "
              f"exceed {held:.0%})")
        # The call can only be slower than its calibration (the counter now
        # competes for the cores); half of it still leaves the held case
        # under 10 %.
        self.assertGreater(call, 20 * switch,
                           f"the calibrated batch ran in {call:.3f} s, "
                           f"{calibrated:.3f} s a moment before")
        # Released, the counter gets its share of a core, well above the
        # held bound even on a loaded machine.
        self.assertGreater(during, max(0.15, 1.5 * held) * expected,
                           f"Python made {during} steps during a {call:.3f} s batch, "
                           f"{expected:.0f} expected if the GIL were released")

    def test_per_batch_overhead(self):
        # What the binding adds around enrich_batch_run: a one-event batch
        # through Pipeline.enrich vs the raw capi call on the same ctx. The
        # bound is in units of this interpreter's speed, measured here: a
        # pure-Python stand-in for the least a wrapper does (a thread-local
        # lookup, a lock, a counter, a small result object). Each figure is
        # the best of a few rounds: noise only ever slows a round down.
        from enrich import capi
        ev = b'{"productId":"P-00001"}'
        ctx = self.pipeline.context()
        h = ctx._h
        n = 20000
        local = threading.local()
        local.ctx = ctx
        lock = threading.Lock()

        class Result:
            __slots__ = ("ctx", "gen", "count")

            def __init__(self, ctx, gen):
                self.ctx, self.gen, self.count = ctx, gen, 1

        def stand_in(batch):
            c = getattr(local, "ctx", None)
            with lock:
                local.gen = getattr(local, "gen", 0) + 1
                return Result(c, local.gen)

        def per_call(fn):
            best = float("inf")
            for _ in range(3):
                t0 = time.perf_counter()
                for _ in range(n):
                    fn(ev)
                best = min(best, (time.perf_counter() - t0) / n)
            return best

        for _ in range(1000):
            capi.batch_run(h, capi.INPUT_NDJSON, ev)
        raw = per_call(lambda b: capi.batch_run(h, capi.INPUT_NDJSON, b))
        pythonic = per_call(self.pipeline.enrich)
        with_output = per_call(lambda b: self.pipeline.enrich(b).ndjson)
        unit = per_call(stand_in)
        ctx.close()
        print(f"\none-event batch: capi.batch_run {raw * 1e6:.2f} us, Pipeline.enrich "
              f"{pythonic * 1e6:.2f} us, + .ndjson {with_output * 1e6:.2f} us; "
              f"the wrapper adds {(pythonic - raw) / unit:.1f}x the pure-Python stand-in "
              f"({unit * 1e6:.2f} us)")
        self.assertLess(pythonic - raw, 10 * unit,
                        "Pipeline.enrich adds more than 10 times the least a wrapper does")

if __name__ == "__main__":
    unittest.main()
