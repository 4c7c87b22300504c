#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Mutation gate (`make mutate`): hand-written mutants of the critical
branches, each of which the unit tests must kill.

Works on a copy of the tracked tree (the checkout is never touched): for
each mutant, replace one exact snippet (it must occur exactly once), build
the named unit test binaries, run them; the mutant is killed when one of
them fails.  Prints one line per mutant and exits 1 if any survived.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time

# name, file, snippet, replacement, tests that must kill it
MUTANTS = [
    ("epoch_enc: the shadow keeps the old page after an encode",
     "lib/epoch_enc.c",
     "\t\tmemcpy(pe->shadow + pfn * TB_PAGE_SIZE, page, TB_PAGE_SIZE);\n",
     "",
     ["test_replica"]),
    ("epoch: dirty bitmap cleared on a failed epoch", "lib/epoch.c",
     "\tif (rc)\n\t\treturn rc;\n\tif (rc2)\n\t\treturn rc2;\n\ttb_bitmap_clear_all(&e->dirty);",
     "\ttb_bitmap_clear_all(&e->dirty);\n\tif (rc)\n\t\treturn rc;\n\tif (rc2)\n\t\treturn rc2;",
     ["test_epoch"]),
    ("epoch: staging error returns with the guest suspended", "lib/epoch.c",
     "\t\t\t  e->info.domid, j->epoch, tb_backend_reason());\n\t\tgoto out_resume;\n\t}\n\tif (e->cfg.mode == TB_MODE_SEND_WHILE_PAUSED)",
     "\t\t\t  e->info.domid, j->epoch, tb_backend_reason());\n\t\tend_pausing(e);\n\t\treturn rc;\n\t}\n\tif (e->cfg.mode == TB_MODE_SEND_WHILE_PAUSED)",
     ["test_epoch"]),
    ("epoch: no slow resume after a failed fast resume", "lib/epoch.c",
     "\tif (rc && e->fast_resume) {", "\tif (0 && rc && e->fast_resume) {",
     ["test_epoch"]),
    ("epoch: output released at staging, before the ACK", "lib/epoch.c",
     "\t\trc = ops->output_boundary(e->dom, j->epoch);",
     "\t\trc = ops->output_boundary(e->dom, j->epoch) ?:\n\t\t     ops->output_release(e->dom, j->epoch);",
     ["test_epoch"]),
    ("epoch: a first sync's closing epoch is timed from its resume",
     "lib/epoch_policy.c",
     "\t\tif (j->busy && j->full && j->rec.t_resumed) {",
     "\t\tif (0 && j->busy && j->full && j->rec.t_resumed) {",
     ["test_epoch"]),
    ("epoch: an ACK that frees a slot does not wake the deferred tick",
     "lib/epoch_link.c",
     "\tif (e->deferred && eventfd_write(e->slot_fd, 1))",
     "\tif (0 && e->deferred && eventfd_write(e->slot_fd, 1))",
     ["test_epoch"]),
    ("stream: the PAGE_CRC digest leaves the page's bytes out",
     "lib/stream.c",
     "\t\ttb_put_le32(le + 8, tb_crc32c(0, page, TB_PAGE_SIZE));",
     "\t\ttb_put_le32(le + 8, tb_crc32c(0, page, 0));",
     ["test_replica"]),
    ("replica: a failed epoch leaves its in-place XOR pages applied",
     "lib/replica.c",
     "\tfor (i = 0; i < r->un_n && !commit; i++) {",
     "\tfor (i = 0; i < r->un_n && 0; i++) {",
     ["test_replica"]),
    ("bitmap: dirty list misses the last word", "lib/bitmap.c",
     "\tfor (i = 0; i < n && out < cap; i++) {",
     "\tfor (i = 0; i + 1 < n && out < cap; i++) {",
     ["test_bitmap", "test_epoch"]),
    ("replica: digest not checked", "lib/replica.c",
     "\tif (end->digest != digest)", "\tif (0 && end->digest != digest)",
     ["test_replica"]),
    ("replica: ACKed (commit returns 1) without applying the pages",
     "lib/replica.c",
     "\t\tfor (i = 0; i < r->st_n; i++)\n\t\t\tmemcpy(r->mem",
     "\t\tfor (i = 0; i < r->st_n; i++)\n\t\t\tif (0) memcpy(r->mem",
     ["test_replica", "test_epoch"]),
    ("codec: XOR_RLE accepts a payload cut after a run", "lib/codec.c",
     "\t\t\tif (pos + (uint32_t)z != TB_PAGE_SIZE)",
     "\t\t\tif (0 && pos + (uint32_t)z != TB_PAGE_SIZE)",
     ["test_codec"]),
    ("codec: XOR_RLE encoder drops a run's last byte", "lib/codec.c",
     "\t\tn = re - rs;", "\t\tn = re - rs - (re - rs > 1);",
     ["test_codec"]),
    ("codec: XOR_RLE error in place not undone", "lib/codec.c",
     "\tif (page_out == prev)\n\t\ttb_rle_apply(p, done, page_out);",
     "\tif (0)\n\t\ttb_rle_apply(p, done, page_out);",
     ["test_codec"]),
    ("codec: XOR_MASK accepts a word with no byte changed", "lib/codec.c",
     "\t\tif (!p[64 + i])\n", "\t\tif (0 && !p[64 + i])\n",
     ["test_codec"]),
    ("codec: XOR_MASK chosen where the runs are smaller", "lib/codec.c",
     "(gap && 64 + w >= 2 * runs + 1)", "(gap && 64 + w >= 4 * runs + 1)",
     ["test_codec"]),
    ("codec: XOR delta decoded without its base", "lib/codec.c",
     "\t\t\tw ^= tb_codec_scratch[i];", "\t\t\tw = tb_codec_scratch[i];",
     ["test_codec"]),
    ("sim: dirty harvest misses the last word", "lib/backend/sim_dirty.c",
     "\tfor (i = 0; i < nw; i++) {\n\t\tif (!__atomic_load_n(&bm[i]",
     "\tfor (i = 0; i + 1 < nw; i++) {\n\t\tif (!__atomic_load_n(&bm[i]",
     ["test_sim_backend"]),
    # (not waiting for the workers was killed only when they lost the
    # race: a gate mutant must be killed every time)
    ("sim: the copy pool's chunks stop a page short",
     "lib/backend/copy_pool.c",
     "\t\t\t   TB_MIN((size_t)TB_COPY_CHUNK, p->npages - first),",
     "\t\t\t   TB_MIN((size_t)TB_COPY_CHUNK, p->npages - first) - 1,",
     ["test_sim_backend"]),
    # test_replicator_proto runs the (rebuilt) tiber-replicator
    ("replicator: a HELLO of another size replaces the committed replica",
     "replicator/session.c",
     "\t} else if (d && d->have_rep && d->rep.have_commit &&",
     "\t} else if (0 && d && d->have_rep && d->rep.have_commit &&",
     ["test_replicator_proto"]),
    ("replicator: a HELLO's declared size is not bounded",
     "replicator/session.c",
     "\tif (h->nr_pages > max / TB_PAGE_SIZE) {", "\tif (0) {",
     ["test_replicator_proto"]),
    ("replica: a commit applies the epoch's disk writes last first",
     "lib/replica_disk.c",
     "\tfor (i = 0; !rc && i < s->n; i++) {\n\t\te = &s->ents[i];",
     "\tfor (i = s->n; !rc && i-- > 0;) {\n\t\te = &s->ents[i];",
     ["test_replica"]),
    ("replica: a commit skips the epoch's disk writes", "lib/replica.c",
     "\tif (tb_rdisks_commit(&r->disks))",
     "\tif (0 && tb_rdisks_commit(&r->disks))",
     ["test_replica"]),
    ("replica: a re-sync of another copy's generation is accepted",
     "lib/replica_disk.c",
     "\t    s->gen[i->disk] != i->gen || s->broken)",
     "\t    s->broken)",
     ["test_replica"]),
    ("sim: a disk write while nobody mirrors is not marked",
     "lib/simdisk.c",
     "\tif (!TB_LD(&k->mirror)) {\n\t\tmark(k, off, len);",
     "\tif (!TB_LD(&k->mirror)) {\n\t\tif (0) mark(k, off, len);",
     ["test_simproto"]),
    ("sim cow: the fault thread lets a write go before its page is copied",
     "lib/backend/sim_cow.c",
     "\twhile ((slot = cow_slot(v, gen)) != 0) {",
     "\twhile (0 && (slot = cow_slot(v, gen)) != 0) {",
     ["test_sim_backend"]),
    ("sim cow: cow_arm takes a page of the prepared head again",
     "lib/backend/sim_cow.c",
     "\t\t    cow_slot(s->cow[pfns[i]], gen)) {",
     "\t\t    (0 && cow_slot(s->cow[pfns[i]], gen))) {",
     ["test_sim_backend"]),
    ("epoch: mode cow leaves out the pages dirtied after cow_prepare",
     "lib/epoch.c",
     "\t\tn = prepared + tb_bitmap_take_new(",
     "\t\tn = prepared + 0 * tb_bitmap_take_new(",
     ["test_epoch"]),
    ("sim cow: a harvest re-protects only the last run of dirty pages",
     "lib/backend/sim_cow.c",
     "\t\t\tif (len)\n\t\t\t\trc = wp(d, run, len, true);",
     "\t\t\tif (0 && len)\n\t\t\t\trc = wp(d, run, len, true);",
     ["test_sim_backend"]),
    ("epoch: mode cow never finishes the copy after the resume",
     "lib/epoch.c",
     "\tif (armed) {", "\tif (0 && armed) {",
     ["test_epoch"]),
    ("replicator: a session's slot is never freed", "replicator/session.c",
     "\tif (d->have_rep && d->rep.have_commit)\n\t\treturn false;",
     "\tif (1)\n\t\treturn false;",
     ["test_replicator_proto"]),
]


def run(cmd, cwd, timeout=None, env=None):
    return subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, timeout=timeout, env=env)


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    only = sys.argv[1:]
    work = tempfile.mkdtemp(prefix="tiber-m.")
    try:
        files = run(["git", "ls-files", "-z"], root).stdout.split(b"\0")
        for f in files:
            if not f:
                continue
            src = os.path.join(root, f.decode())
            dst = os.path.join(work, f.decode())
            if os.path.isfile(src):
                os.makedirs(os.path.dirname(dst), exist_ok=True)
                shutil.copy2(src, dst)
        tests = sorted({t for m in MUTANTS for t in m[4]})
        # the simulated guest too: the sim backend's tests start it
        targets = ["build/bin/tiber-simguest", "build/bin/tiber-replicator"] + \
            ["build/rel/tests/" + t for t in tests]
        r = run(["make", "-j2", "-s"] + targets, work)
        if r.returncode:
            sys.stdout.write(r.stdout.decode(errors="replace"))
            print("mutate: the unmutated tree does not build")
            return 2
        # what a killed test leaves (sockets, temp dirs) goes with `work`
        tmp = os.path.join(work, "tmp")
        os.mkdir(tmp)
        env = dict(os.environ, CK_TIMEOUT_MULTIPLIER="0.5", TMPDIR=tmp)
        # a kill only counts if the same test passes without the mutant
        for t in tests:
            r = run(["build/rel/tests/" + t], work, 600, env)
            if r.returncode:
                sys.stdout.write(r.stdout.decode(errors="replace")[-3000:])
                print("mutate: %s fails on the unmutated tree" % t)
                return 2
        survived = 0
        for name, path, old, new, kill in MUTANTS:
            if only and not any(o in name for o in only):
                continue
            p = os.path.join(work, path)
            text = open(p).read()
            if text.count(old) != 1:
                print("mutate: ERROR %s: snippet found %d times in %s"
                      % (name, text.count(old), path))
                return 2
            open(p, "w").write(text.replace(old, new))
            t0 = time.monotonic()
            try:
                r = run(["make", "-j2", "-s"] +
                        ["build/rel/tests/" + t for t in kill] +
                        ["build/bin/tiber-replicator"], work)
                if r.returncode:
                    sys.stdout.write(r.stdout.decode(errors="replace")[-2000:])
                    print("mutate: ERROR %s: the mutant does not build" % name)
                    return 2
                killer = None
                for t in kill:
                    try:
                        r = run(["build/rel/tests/" + t], work, 600, env)
                        failed = r.returncode != 0
                    except subprocess.TimeoutExpired:
                        failed = True
                    if failed:
                        killer = t
                        break
            finally:
                open(p, "w").write(text)
                os.utime(p)
            secs = time.monotonic() - t0
            if killer:
                print("mutant killed   by %-17s (%5.1fs): %s" % (killer, secs, name))
            else:
                survived += 1
                print("mutant SURVIVED %s (%5.1fs): %s" % (",".join(kill), secs, name))
        print("mutate: %d survived" % survived)
        return 1 if survived else 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
