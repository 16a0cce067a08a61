"""Triton kernels of the soft confusion counts (launched from softset_fast/triton_ops.py).

Layout: preds [N, C, L] contiguous; the counts are reduced per *segment*
s = g·C + c (G = N groups when samplewise, else 1), a segment being the
elements of class c in group g: R = N / G rows of L elements each.

Per-threshold coefficients come in ``coef`` [7, T] in the compute dtype
(float32, or float64 for float64 preds), rows:
    0 a_cmp, 1 b_cmp, 2 tau_cmp, 3 m1 (sigmoid: k), 4 m2, 5 m3, 6 c2
(no c3: above b the kernels compute m3·p + c3 as 1 − m3·(1 − p), exactly 1 at p = 1).
a_cmp / b_cmp / tau_cmp are the float64 breakpoints rounded so that a float32
comparison gives the float64 answer exactly (see triton_ops._coefficients):
p < a  <=>  p < a_cmp,  p > b  <=>  p > b_cmp,  p >= tau  <=>  p >= tau_cmp.

Modes are constexpr: APPROX 0 linear, 1 sigmoid, 2 step.

The element kernels (forward direct, forward histogram, backward) read the same inputs:
    preds_ptr   [N, C, L] float16/bfloat16/float32/float64
    target_ptr  [N, C, L] (MULTICLASS=False) or [N, L] class indices
    weight_ptr  target's shape, float32/float64 (unused unless HAS_WEIGHT)
    coef_ptr    [7, T] compute dtype, rows as above

Sizes (C, L, R, T, ...) are plain runtime arguments marked ``do_not_specialize``: Triton would
otherwise compile a new variant per value class (== 1, divisible by 16) of every size, which
multiplied the compilations of the test suite on a GPU. Only dtypes and the mode flags select a
compiled variant. Uniform flags that cost one scalar branch or compare (one_row, has_ignore,
samplewise) and the binary-search depth log2_t are runtime arguments for the same reason.
"""
import triton
import triton.language as tl

LINEAR = 0
SIGMOID = 1
STEP = 2

_SIZES = ["C", "L", "R", "seg_len", "T", "n_chunks", "chunk_size", "ignore_int", "n_elements", "copies", "flush",
          "has_ignore", "one_row", "samplewise", "single_segment", "log2_t"]


def _jit(fn):
    """triton.jit without value specialisation of the size arguments (see the module docstring)."""
    import inspect
    names = [n for n in inspect.signature(fn).parameters if n in _SIZES]
    return triton.jit(do_not_specialize=names)(fn)


@triton.jit
def _program_chunk(n_chunks, C):
    """(pid, segment s, chunk, group g, class c) of this program: axis 0 is pid = s·n_chunks + chunk, s = g·C + c."""
    pid = tl.program_id(0).to(tl.int64)
    s = pid // n_chunks
    chunk = pid - s * n_chunks
    g = s // C
    return pid, s, chunk, g, s - g * C


@triton.jit
def _element_offsets(g, c, e, C, L, R, one_row, MULTICLASS: tl.constexpr):
    """Offsets of the segment-local element indices ``e`` (int64) in preds and in target/weight."""
    if one_row:  # the segment is one row n = g of L elements (R == 1): no division
        row = e * 0
    else:
        row = e // L
    n = g * R + row
    l_idx = e - row * L
    preds_off = (n * C + c) * L + l_idx
    if MULTICLASS:
        target_off = n * L + l_idx
    else:
        target_off = preds_off
    return preds_off, target_off


@triton.jit
def _load_labels(target_ptr, weight_ptr, target_off, mask, c, ignore_int, ignore_float, COMPUTE: tl.constexpr,
                 MULTICLASS: tl.constexpr, HAS_WEIGHT: tl.constexpr, has_ignore,
                 TARGET_FLOAT: tl.constexpr):
    """(w·y, w·(1 − y)) per element in the compute dtype; ignored and masked elements give 0."""
    tv = tl.load(target_ptr + target_off, mask=mask, other=0)
    keep = mask
    if has_ignore:
        if TARGET_FLOAT:
            keep = keep & (tv.to(tl.float64) != ignore_float)
        else:
            keep = keep & (tv.to(tl.int64) != ignore_int)
    if MULTICLASS:
        y = (tv.to(tl.int64) == c).to(COMPUTE)
    else:
        y = tl.where(keep, tv.to(COMPUTE), 0.0)
    if HAS_WEIGHT:
        w = tl.load(weight_ptr + target_off, mask=keep, other=0).to(COMPUTE)
    else:
        w = keep.to(COMPUTE)
    return w * y, w * (1.0 - y)


@triton.jit
def _count_below(x, table_ptr, T, log2_t, STRICT: tl.constexpr):
    """#{t : table[t] <= x} (STRICT: table[t] < x) for an ascending table [T]; branch-free binary search."""
    pos = tl.zeros(x.shape, dtype=tl.int32)
    for i in range(0, log2_t):  # a runtime loop: one compiled variant for every T
        cand = pos + (1 << (log2_t - 1 - i))
        ok = cand <= T
        v = tl.load(table_ptr + (cand - 1), mask=ok, other=0.0)
        if STRICT:
            ok = ok & (v < x)
        else:
            ok = ok & (v <= x)
        pos = tl.where(ok, cand, pos)
    return pos


@triton.jit
def _h_tile(p2, a, b, m1, m2, m3, c2, tau, kk, APPROX: tl.constexpr, COMPUTE: tl.constexpr):
    """H̃(p, τ_t) for a [BLOCK, T_BLOCK] tile (p2 = p[:, None], coefficients [1, T_BLOCK])."""
    if APPROX == 0:
        h = tl.where(p2 < a, m1 * p2, tl.where(p2 > b, 1 - m3 * (1 - p2), m2 * p2 + c2))  # 1 at p = 1
    elif APPROX == 1:
        h = tl.sigmoid(kk * (p2 - tau))
    else:
        h = (p2 >= tau).to(COMPUTE)
    return h


@_jit
def _forward_direct_kernel(
    preds_ptr, target_ptr, weight_ptr, coef_ptr,  # the element kernels' inputs (module docstring)
    partial_ptr,  # [S, n_chunks, T, 4] float64: (Σ w·y·H̃, Σ w·y, Σ w(1−y)·H̃, Σ w(1−y)) per chunk
    C, L, R, seg_len, T, n_chunks, chunk_size, ignore_int, ignore_float, flush,
    APPROX: tl.constexpr, MULTICLASS: tl.constexpr, HAS_WEIGHT: tl.constexpr, has_ignore,
    TARGET_FLOAT: tl.constexpr, one_row, BLOCK_SIZE: tl.constexpr, T_BLOCK: tl.constexpr,
):
    """Direct forward: program (segment·n_chunks + chunk, threshold block) evaluates H̃ for its chunk of
    elements × T_BLOCK thresholds. Each lane accumulates its own [BLOCK_SIZE, T_BLOCK] tile in the
    compute dtype and the block is reduced (across warps: shared memory and a barrier) only every ``flush``
    iterations, into float64. chunk_size is a multiple of BLOCK_SIZE·flush. Fixed order: deterministic."""
    COMPUTE: tl.constexpr = coef_ptr.dtype.element_ty
    pid, s, chunk, g, c = _program_chunk(n_chunks, C)
    t_offs = tl.program_id(1) * T_BLOCK + tl.arange(0, T_BLOCK)
    t_mask = t_offs < T
    a = tl.load(coef_ptr + 0 * T + t_offs, mask=t_mask, other=0.0)[None, :]
    b = tl.load(coef_ptr + 1 * T + t_offs, mask=t_mask, other=0.0)[None, :]
    tau = tl.load(coef_ptr + 2 * T + t_offs, mask=t_mask, other=0.0)[None, :]
    m1 = tl.load(coef_ptr + 3 * T + t_offs, mask=t_mask, other=0.0)[None, :]
    m2 = tl.load(coef_ptr + 4 * T + t_offs, mask=t_mask, other=0.0)[None, :]
    m3 = tl.load(coef_ptr + 5 * T + t_offs, mask=t_mask, other=0.0)[None, :]
    c2 = tl.load(coef_ptr + 6 * T + t_offs, mask=t_mask, other=0.0)[None, :]

    acc_pos = tl.zeros([T_BLOCK], dtype=tl.float64)
    acc_neg = tl.zeros([T_BLOCK], dtype=tl.float64)
    tot_pos = tl.zeros([1], dtype=tl.float64)
    tot_neg = tl.zeros([1], dtype=tl.float64)
    start = chunk * chunk_size
    for outer in range(0, chunk_size, BLOCK_SIZE * flush):
        tile_pos = tl.zeros([BLOCK_SIZE, T_BLOCK], dtype=COMPUTE)
        tile_neg = tl.zeros([BLOCK_SIZE, T_BLOCK], dtype=COMPUTE)
        lane_pos = tl.zeros([BLOCK_SIZE], dtype=COMPUTE)
        lane_neg = tl.zeros([BLOCK_SIZE], dtype=COMPUTE)
        for inner in range(0, flush):
            e = start + outer + inner * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE).to(tl.int64)
            mask = e < seg_len
            preds_off, target_off = _element_offsets(g, c, e, C, L, R, one_row, MULTICLASS)
            p = tl.load(preds_ptr + preds_off, mask=mask, other=0.0).to(COMPUTE)
            wy, wn = _load_labels(target_ptr, weight_ptr, target_off, mask, c, ignore_int, ignore_float, COMPUTE,
                                  MULTICLASS, HAS_WEIGHT, has_ignore, TARGET_FLOAT)
            h = _h_tile(p[:, None], a, b, m1, m2, m3, c2, tau, m1, APPROX, COMPUTE)
            tile_pos += wy[:, None] * h
            tile_neg += wn[:, None] * h
            lane_pos += wy
            lane_neg += wn
        acc_pos += tl.sum(tile_pos, axis=0).to(tl.float64)
        acc_neg += tl.sum(tile_neg, axis=0).to(tl.float64)
        tot_pos += tl.sum(lane_pos, axis=0).to(tl.float64)
        tot_neg += tl.sum(lane_neg, axis=0).to(tl.float64)

    out = partial_ptr + (pid * T + t_offs) * 4
    tl.store(out + 0, acc_pos, mask=t_mask)
    tl.store(out + 1, tl.broadcast_to(tot_pos, [T_BLOCK]), mask=t_mask)
    tl.store(out + 2, acc_neg, mask=t_mask)
    tl.store(out + 3, tl.broadcast_to(tot_neg, [T_BLOCK]), mask=t_mask)


@_jit
def _finish_direct_kernel(
    partial_ptr,  # [S, n_chunks, T, 4] float64 (S1, P, S0, Q) per chunk
    out_ptr,      # [S, T, 4] float32/float64: (tp, fn, fp, tn)
    T, n_chunks,
    T_BLOCK: tl.constexpr,
):
    """Sums the chunks in a fixed order (deterministic) and writes the counts in the output dtype."""
    s = tl.program_id(0).to(tl.int64)
    t_offs = tl.program_id(1) * T_BLOCK + tl.arange(0, T_BLOCK)
    t_mask = t_offs < T
    s1 = tl.zeros([T_BLOCK], dtype=tl.float64)
    pos = tl.zeros([T_BLOCK], dtype=tl.float64)
    s0 = tl.zeros([T_BLOCK], dtype=tl.float64)
    neg = tl.zeros([T_BLOCK], dtype=tl.float64)
    for k in range(0, n_chunks):
        row = partial_ptr + ((s * n_chunks + k) * T + t_offs) * 4
        s1 += tl.load(row + 0, mask=t_mask, other=0.0)
        pos += tl.load(row + 1, mask=t_mask, other=0.0)
        s0 += tl.load(row + 2, mask=t_mask, other=0.0)
        neg += tl.load(row + 3, mask=t_mask, other=0.0)
    _store_counts(out_ptr + (s * T + t_offs) * 4, s1, pos, s0, neg, t_mask)


@triton.jit
def _store_counts(out, s1, pos, s0, neg, mask):
    """(S1, P, S0, Q) -> (tp, fn, fp, tn) = (S1, P − S1, S0, Q − S0) in the output dtype."""
    dt: tl.constexpr = out.dtype.element_ty
    tl.store(out + 0, s1.to(dt), mask=mask)
    tl.store(out + 1, (pos - s1).to(dt), mask=mask)
    tl.store(out + 2, s0.to(dt), mask=mask)
    tl.store(out + 3, (neg - s0).to(dt), mask=mask)


@_jit
def _forward_histogram_kernel(
    preds_ptr, target_ptr, weight_ptr, coef_ptr,  # the element kernels' inputs (module docstring)
    hist_ptr,    # [S, copies, 2 (T + 1), 4] float64, zeroed; atomically accumulated
    C, L, R, seg_len, T, n_chunks, chunk_size, ignore_int, ignore_float, copies,
    APPROX: tl.constexpr, MULTICLASS: tl.constexpr, HAS_WEIGHT: tl.constexpr, has_ignore,
    TARGET_FLOAT: tl.constexpr, one_row, log2_t, BLOCK_SIZE: tl.constexpr,
):
    """O(N + T) forward for linear / step (float atomics: not bit-reproducible).

    linear: bin i1 = #{t: a_t <= p} (segment 1 for t >= i1) gets (w·y·p, w·y, w(1−y)p, w(1−y)) in rows
    [0, T]; bin i3 = #{t: b_t < p} (segment 3 for t < i3) gets the same in rows [T + 1, 2T + 1].
    step: bin j = #{t: tau_t <= p} (H = 1 for t < j) gets (0, w·y, 0, w(1−y)) in rows [0, T].
    Chunk k adds to histogram copy k % copies (fewer programs contend for one address); zero
    contributions are not issued (hard labels: half the atomics).
    """
    COMPUTE: tl.constexpr = coef_ptr.dtype.element_ty
    _, s, chunk, g, c = _program_chunk(n_chunks, C)
    hist = hist_ptr + (s * copies + chunk % copies) * (2 * (T + 1) * 4)
    start = chunk * chunk_size
    for off in range(0, chunk_size, BLOCK_SIZE):
        e = start + off + tl.arange(0, BLOCK_SIZE).to(tl.int64)
        mask = e < seg_len
        preds_off, target_off = _element_offsets(g, c, e, C, L, R, one_row, MULTICLASS)
        p = tl.load(preds_ptr + preds_off, mask=mask, other=0.0).to(COMPUTE)
        wy, wn = _load_labels(target_ptr, weight_ptr, target_off, mask, c, ignore_int, ignore_float, COMPUTE,
                              MULTICLASS, HAS_WEIGHT, has_ignore, TARGET_FLOAT)
        live = mask & ((wy != 0) | (wn != 0))
        if APPROX == 0:
            i1 = _count_below(p, coef_ptr + 0 * T, T, log2_t, False)
            i3 = _count_below(p, coef_ptr + 1 * T, T, log2_t, True)
            bin1 = hist + i1 * 4
            bin3 = hist + (T + 1 + i3) * 4
            pos = live & (wy != 0)
            neg = live & (wn != 0)
            tl.atomic_add(bin1 + 0, (wy * p).to(tl.float64), mask=pos, sem="relaxed")
            tl.atomic_add(bin1 + 1, wy.to(tl.float64), mask=pos, sem="relaxed")
            tl.atomic_add(bin1 + 2, (wn * p).to(tl.float64), mask=neg, sem="relaxed")
            tl.atomic_add(bin1 + 3, wn.to(tl.float64), mask=neg, sem="relaxed")
            tl.atomic_add(bin3 + 0, (wy * p).to(tl.float64), mask=pos, sem="relaxed")
            tl.atomic_add(bin3 + 1, wy.to(tl.float64), mask=pos, sem="relaxed")
            tl.atomic_add(bin3 + 2, (wn * p).to(tl.float64), mask=neg, sem="relaxed")
            tl.atomic_add(bin3 + 3, wn.to(tl.float64), mask=neg, sem="relaxed")
        else:
            j = _count_below(p, coef_ptr + 2 * T, T, log2_t, False)
            bin_j = hist + j * 4
            tl.atomic_add(bin_j + 1, wy.to(tl.float64), mask=live & (wy != 0), sem="relaxed")
            tl.atomic_add(bin_j + 3, wn.to(tl.float64), mask=live & (wn != 0), sem="relaxed")


@_jit
def _finish_histogram_kernel(
    hist_ptr,  # [S, copies, 2 (T + 1), 4] float64 from _forward_histogram_kernel
    grid_ptr,  # [T, 8] float64 coefficient table (tau, a, b, m1, m2, m3, c2, c3)
    out_ptr,   # [S, T, 4] float32/float64: (tp, fn, fp, tn)
    T, copies,
    APPROX: tl.constexpr, T_BLOCK: tl.constexpr,
):
    """Per segment: the copies summed, then prefix scans over the bins give every threshold (float64).

    Segment 1 holds at t for the elements with i1 <= t (below1 = inclusive prefix of rows [0, T]),
    segment 3 for those with i3 > t (above3 = total − inclusive prefix of rows [T + 1, 2T + 1]).
    """
    s = tl.program_id(0).to(tl.int64)
    base = hist_ptr + s * copies * (2 * (T + 1) * 4)
    # Pass 1: the totals (Σ w·y·p, Σ w·y, Σ w(1−y)p, Σ w(1−y)) of the segment (every bin of set 1).
    tot = tl.zeros([4], dtype=tl.float64)
    cols = tl.arange(0, 4)
    for b0 in range(0, T + 1, T_BLOCK):
        rows = b0 + tl.arange(0, T_BLOCK)
        m = (rows < T + 1)[:, None]
        for k in range(0, copies):
            v = tl.load(base + k * (2 * (T + 1) * 4) + rows[:, None] * 4 + cols[None, :], mask=m, other=0.0)
            tot += tl.sum(v, axis=0)
    t_p = tl.sum(tl.where(cols == 0, tot, 0.0), axis=0)
    t_w = tl.sum(tl.where(cols == 1, tot, 0.0), axis=0)
    t_np = tl.sum(tl.where(cols == 2, tot, 0.0), axis=0)
    t_nw = tl.sum(tl.where(cols == 3, tot, 0.0), axis=0)
    # Pass 2: running prefix sums, carried across blocks of T_BLOCK thresholds.
    c1 = tl.zeros([4], dtype=tl.float64)
    c3 = tl.zeros([4], dtype=tl.float64)
    for t0 in range(0, T, T_BLOCK):
        t_offs = t0 + tl.arange(0, T_BLOCK)
        t_mask = t_offs < T
        m = t_mask[:, None]
        v1 = tl.zeros([T_BLOCK, 4], dtype=tl.float64)
        v3 = tl.zeros([T_BLOCK, 4], dtype=tl.float64)
        for k in range(0, copies):
            row = base + k * (2 * (T + 1) * 4) + t_offs[:, None] * 4 + cols[None, :]
            v1 += tl.load(row, mask=m, other=0.0)
            if APPROX == 0:
                v3 += tl.load(row + (T + 1) * 4, mask=m, other=0.0)
        below1 = c1[None, :] + tl.cumsum(v1, axis=0)
        c1 += tl.sum(v1, axis=0)
        b1p = tl.sum(tl.where(cols[None, :] == 0, below1, 0.0), axis=1)
        b1w = tl.sum(tl.where(cols[None, :] == 1, below1, 0.0), axis=1)
        b1np = tl.sum(tl.where(cols[None, :] == 2, below1, 0.0), axis=1)
        b1nw = tl.sum(tl.where(cols[None, :] == 3, below1, 0.0), axis=1)
        if APPROX == 0:
            upto3 = c3[None, :] + tl.cumsum(v3, axis=0)
            c3 += tl.sum(v3, axis=0)
            a3p = t_p - tl.sum(tl.where(cols[None, :] == 0, upto3, 0.0), axis=1)
            a3w = t_w - tl.sum(tl.where(cols[None, :] == 1, upto3, 0.0), axis=1)
            a3np = t_np - tl.sum(tl.where(cols[None, :] == 2, upto3, 0.0), axis=1)
            a3nw = t_nw - tl.sum(tl.where(cols[None, :] == 3, upto3, 0.0), axis=1)
            coef = grid_ptr + t_offs * 8
            m1 = tl.load(coef + 3, mask=t_mask, other=0.0)
            m2 = tl.load(coef + 4, mask=t_mask, other=0.0)
            m3 = tl.load(coef + 5, mask=t_mask, other=0.0)
            q2 = tl.load(coef + 6, mask=t_mask, other=0.0)
            # Above b, Σ w·(1 − m3·(1 − p)): exactly Σw when every p there is 1.
            s1 = m1 * b1p + (a3w - m3 * (a3w - a3p)) + m2 * (t_p - b1p - a3p) + q2 * (t_w - b1w - a3w)
            s0 = m1 * b1np + (a3nw - m3 * (a3nw - a3np)) + m2 * (t_np - b1np - a3np) + q2 * (t_nw - b1nw - a3nw)
        else:  # step: H = 1 for the elements with j > t
            s1 = t_w - b1w
            s0 = t_nw - b1nw
        _store_counts(out_ptr + (s * T + t_offs) * 4, s1, tl.zeros_like(s1) + t_w, s0,
                      tl.zeros_like(s0) + t_nw, t_mask)


@_jit
def _linear_table_kernel(
    grad_ptr,   # [S, T, 4] float32/float64: upstream gradient of (tp, fn, fp, tn)
    grid_ptr,   # [T, 8] float64 coefficient table
    table_ptr,  # [S, T + 1, 4] float64 (U_A, V_A, U_B, V_B), written
    T,
    T_BLOCK: tl.constexpr,
):
    """The backward prefix tables of triton_ops._linear_table in one pass per segment:
    U[i] = Σ_t m1 g + Σ_{t<i} (m2 − m1) g,  V[i] = Σ_{t<i} (m3 − m2) g  (g = g_A, g_B)."""
    s = tl.program_id(0).to(tl.int64)
    g_row = grad_ptr + s * T * 4
    out = table_ptr + s * (T + 1) * 4
    tot_a = tl.zeros([1], dtype=tl.float64)
    tot_b = tl.zeros([1], dtype=tl.float64)
    for t0 in range(0, T, T_BLOCK):
        t_offs = t0 + tl.arange(0, T_BLOCK)
        t_mask = t_offs < T
        g_a, g_b = _grad_ab(g_row, t_offs, t_mask)
        m1 = tl.load(grid_ptr + t_offs * 8 + 3, mask=t_mask, other=0.0)
        tot_a += tl.sum(m1 * g_a, axis=0)
        tot_b += tl.sum(m1 * g_b, axis=0)
    # Row i holds the exclusive prefixes over t < i: row 0 is (tot, 0), row t + 1 follows threshold t.
    zero = tl.zeros([1], dtype=tl.float64)
    first = tl.arange(0, 1)
    tl.store(out + first * 4 + 0, tot_a)
    tl.store(out + first * 4 + 1, zero)
    tl.store(out + first * 4 + 2, tot_b)
    tl.store(out + first * 4 + 3, zero)
    u_a = tot_a
    u_b = tot_b
    v_a = zero
    v_b = zero
    for t0 in range(0, T, T_BLOCK):
        t_offs = t0 + tl.arange(0, T_BLOCK)
        t_mask = t_offs < T
        g_a, g_b = _grad_ab(g_row, t_offs, t_mask)
        coef = grid_ptr + t_offs * 8
        m1 = tl.load(coef + 3, mask=t_mask, other=0.0)
        m2 = tl.load(coef + 4, mask=t_mask, other=0.0)
        m3 = tl.load(coef + 5, mask=t_mask, other=0.0)
        du_a = tl.cumsum((m2 - m1) * g_a, axis=0)
        du_b = tl.cumsum((m2 - m1) * g_b, axis=0)
        dv_a = tl.cumsum((m3 - m2) * g_a, axis=0)
        dv_b = tl.cumsum((m3 - m2) * g_b, axis=0)
        row = out + (t_offs + 1) * 4
        tl.store(row + 0, u_a + du_a, mask=t_mask)
        tl.store(row + 1, v_a + dv_a, mask=t_mask)
        tl.store(row + 2, u_b + du_b, mask=t_mask)
        tl.store(row + 3, v_b + dv_b, mask=t_mask)
        u_a += tl.sum((m2 - m1) * g_a, axis=0)
        u_b += tl.sum((m2 - m1) * g_b, axis=0)
        v_a += tl.sum((m3 - m2) * g_a, axis=0)
        v_b += tl.sum((m3 - m2) * g_b, axis=0)


@triton.jit
def _grad_ab(g_row, t_offs, t_mask):
    """(g_A, g_B) = (g_tp − g_fn, g_fp − g_tn) in float64 for the thresholds t_offs."""
    row = g_row + t_offs * 4
    g_a = tl.load(row + 0, mask=t_mask, other=0.0).to(tl.float64) - tl.load(row + 1, mask=t_mask, other=0.0).to(tl.float64)
    g_b = tl.load(row + 2, mask=t_mask, other=0.0).to(tl.float64) - tl.load(row + 3, mask=t_mask, other=0.0).to(tl.float64)
    return g_a, g_b


@_jit
def _backward_kernel(
    grad_out_ptr,  # [N, C, L] preds dtype: the gradient with respect to preds (written)
    preds_ptr, target_ptr, weight_ptr, coef_ptr,  # the element kernels' inputs (module docstring)
    table_ptr,     # linear: [S, T + 1, 4] float64 (U_A, V_A, U_B, V_B); sigmoid: the upstream gradient [S, T, 4]
    n_elements, C, L, T, ignore_int, ignore_float,
    APPROX: tl.constexpr, MULTICLASS: tl.constexpr, HAS_WEIGHT: tl.constexpr, has_ignore,
    TARGET_FLOAT: tl.constexpr, samplewise, single_segment, log2_t,
    BLOCK_SIZE: tl.constexpr, T_BLOCK: tl.constexpr,
):
    """grad[i] = w_i Σ_t H̃'(p_i, τ_t) (y_i g_A[t] + (1 − y_i) g_B[t]), g_A = g_tp − g_fn, g_B = g_fp − g_tn.

    linear: Σ_t over the segments is U[i1] + V[i3] with the prefix tables of triton_ops._linear_table;
    sigmoid: a loop over the thresholds in blocks of T_BLOCK.
    """
    COMPUTE: tl.constexpr = coef_ptr.dtype.element_ty
    offs = tl.program_id(0).to(tl.int64) * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE).to(tl.int64)
    mask = offs < n_elements
    if single_segment:  # C == 1 and global: one segment, target laid out like preds (no divisions)
        s = offs * 0
        c = offs * 0
        target_off = offs
    else:
        row = offs // L
        n = row // C
        c = row - n * C
        l_idx = offs - row * L
        if samplewise:
            s = row
        else:
            s = c
        if MULTICLASS:
            target_off = n * L + l_idx
        else:
            target_off = offs
    p = tl.load(preds_ptr + offs, mask=mask, other=0.0).to(COMPUTE)
    wy, wn = _load_labels(target_ptr, weight_ptr, target_off, mask, c, ignore_int, ignore_float, COMPUTE,
                          MULTICLASS, HAS_WEIGHT, has_ignore, TARGET_FLOAT)
    if APPROX == 0:
        i1 = _count_below(p, coef_ptr + 0 * T, T, log2_t, False)
        i3 = _count_below(p, coef_ptr + 1 * T, T, log2_t, True)
        row1 = table_ptr + (s * (T + 1) + i1) * 4
        row3 = table_ptr + (s * (T + 1) + i3) * 4
        d_a = tl.load(row1 + 0, mask=mask, other=0.0) + tl.load(row3 + 1, mask=mask, other=0.0)
        d_b = tl.load(row1 + 2, mask=mask, other=0.0) + tl.load(row3 + 3, mask=mask, other=0.0)
        grad = wy.to(tl.float64) * d_a + wn.to(tl.float64) * d_b
    else:
        acc_a = tl.zeros([BLOCK_SIZE], dtype=COMPUTE)
        acc_b = tl.zeros([BLOCK_SIZE], dtype=COMPUTE)
        p2 = p[:, None]
        for t0 in range(0, T, T_BLOCK):
            t_offs = t0 + tl.arange(0, T_BLOCK)
            t_mask = t_offs < T
            tau = tl.load(coef_ptr + 2 * T + t_offs, mask=t_mask, other=0.0)[None, :]
            kk = tl.load(coef_ptr + 3 * T + t_offs, mask=t_mask, other=0.0)[None, :]
            both = mask[:, None] & t_mask[None, :]
            trow = table_ptr + (s[:, None] * T + t_offs[None, :]) * 4
            g_a = (tl.load(trow + 0, mask=both, other=0.0).to(COMPUTE)
                   - tl.load(trow + 1, mask=both, other=0.0).to(COMPUTE))
            g_b = (tl.load(trow + 2, mask=both, other=0.0).to(COMPUTE)
                   - tl.load(trow + 3, mask=both, other=0.0).to(COMPUTE))
            h = tl.sigmoid(kk * (p2 - tau))
            slope = kk * h * (1.0 - h)
            acc_a += tl.sum(slope * g_a, axis=1)
            acc_b += tl.sum(slope * g_b, axis=1)
        grad = wy * acc_a + wn * acc_b
    # Through the compute dtype: a direct float64 -> bfloat16 conversion is not supported everywhere.
    tl.store(grad_out_ptr + offs, grad.to(COMPUTE).to(grad_out_ptr.dtype.element_ty), mask=mask)
