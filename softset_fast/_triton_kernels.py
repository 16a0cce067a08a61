"""Triton kernels of the soft confusion counts (launched from softset_fast/triton_ops.py).

Layout: preds [N, C, L] contiguous; the counts are reduced per *segment*
s = g·C + c (G = N groups when samplewise, else 1), a segment being the
elements of class c in group g: R = N / G rows of L elements each.

Per-threshold coefficients come in ``coef`` [8, T] in the compute dtype
(float32, or float64 for float64 preds), rows:
    0 a_cmp, 1 b_cmp, 2 tau_cmp, 3 m1 (sigmoid: k), 4 m2, 5 m3, 6 c2, 7 c3.
a_cmp / b_cmp / tau_cmp are the float64 breakpoints rounded so that a float32
comparison gives the float64 answer exactly (see triton_ops._coefficients):
p < a  <=>  p < a_cmp,  p > b  <=>  p > b_cmp,  p >= tau  <=>  p >= tau_cmp.

Modes are constexpr: APPROX 0 linear, 1 sigmoid, 2 step.
"""
import triton
import triton.language as tl

LINEAR = 0
SIGMOID = 1
STEP = 2


@triton.jit
def _element_offsets(g, c, e, C, L, R, ONE_ROW: tl.constexpr, MULTICLASS: tl.constexpr):
    """Offsets of the segment-local element indices ``e`` (int64) in preds and in target/weight."""
    if ONE_ROW:  # the segment is one row n = g of L elements
        n = g
        l_idx = e
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
                 MULTICLASS: tl.constexpr, HAS_WEIGHT: tl.constexpr, HAS_IGNORE: tl.constexpr,
                 TARGET_FLOAT: tl.constexpr):
    """(w·y, w·(1 − y)) per element in the compute dtype; ignored and masked elements give 0."""
    tv = tl.load(target_ptr + target_off, mask=mask, other=0)
    keep = mask
    if HAS_IGNORE:
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
def _count_below(x, table_ptr, T, LOG2_T: tl.constexpr, STRICT: tl.constexpr):
    """#{t : table[t] <= x} (STRICT: table[t] < x) for an ascending table [T]; branch-free binary search."""
    pos = tl.zeros(x.shape, dtype=tl.int32)
    for i in tl.static_range(LOG2_T):
        cand = pos + (1 << (LOG2_T - 1 - i))
        ok = cand <= T
        v = tl.load(table_ptr + (cand - 1), mask=ok, other=0.0)
        if STRICT:
            ok = ok & (v < x)
        else:
            ok = ok & (v <= x)
        pos = tl.where(ok, cand, pos)
    return pos


@triton.jit
def _forward_direct_kernel(
    preds_ptr,    # [N, C, L] float16/bfloat16/float32/float64
    target_ptr,   # [N, C, L] (MULTICLASS=False) or [N, L] class indices
    weight_ptr,   # target's shape, float32/float64 (unused unless HAS_WEIGHT)
    coef_ptr,     # [8, T] compute dtype, rows as in the module docstring
    partial_ptr,  # [S, n_chunks, T, 4] float64: (Σ w·y·H̃, Σ w·y, Σ w(1−y)·H̃, Σ w(1−y)) per chunk
    C, L, R, seg_len, T, n_chunks, chunk_size, ignore_int, ignore_float,
    APPROX: tl.constexpr, MULTICLASS: tl.constexpr, HAS_WEIGHT: tl.constexpr, HAS_IGNORE: tl.constexpr,
    TARGET_FLOAT: tl.constexpr, ONE_ROW: tl.constexpr, BLOCK_SIZE: tl.constexpr, T_BLOCK: tl.constexpr,
):
    """Per (segment, chunk of chunk_size elements, block of T_BLOCK thresholds): evaluate H̃ for every
    element and threshold in registers, reduce, and store the partial sums (no atomics: deterministic)."""
    COMPUTE: tl.constexpr = coef_ptr.dtype.element_ty
    pid = tl.program_id(0).to(tl.int64)
    s = pid // n_chunks
    chunk = pid - s * n_chunks
    g = s // C
    c = s - g * C
    t_offs = tl.program_id(1) * T_BLOCK + tl.arange(0, T_BLOCK)
    t_mask = t_offs < T
    if APPROX == 0:
        a = tl.load(coef_ptr + 0 * T + t_offs, mask=t_mask, other=0.0)[None, :]
        b = tl.load(coef_ptr + 1 * T + t_offs, mask=t_mask, other=0.0)[None, :]
        m1 = tl.load(coef_ptr + 3 * T + t_offs, mask=t_mask, other=0.0)[None, :]
        m2 = tl.load(coef_ptr + 4 * T + t_offs, mask=t_mask, other=0.0)[None, :]
        m3 = tl.load(coef_ptr + 5 * T + t_offs, mask=t_mask, other=0.0)[None, :]
        c2 = tl.load(coef_ptr + 6 * T + t_offs, mask=t_mask, other=0.0)[None, :]
        c3 = tl.load(coef_ptr + 7 * T + t_offs, mask=t_mask, other=0.0)[None, :]
    else:
        tau = tl.load(coef_ptr + 2 * T + t_offs, mask=t_mask, other=0.0)[None, :]
        kk = tl.load(coef_ptr + 3 * T + t_offs, mask=t_mask, other=0.0)[None, :]

    acc_pos = tl.zeros([T_BLOCK], dtype=tl.float64)
    acc_neg = tl.zeros([T_BLOCK], dtype=tl.float64)
    tot_pos = tl.zeros([T_BLOCK], dtype=tl.float64)
    tot_neg = tl.zeros([T_BLOCK], dtype=tl.float64)
    start = chunk * chunk_size
    for off in range(0, chunk_size, BLOCK_SIZE):
        e = start + off + tl.arange(0, BLOCK_SIZE).to(tl.int64)
        mask = e < seg_len
        preds_off, target_off = _element_offsets(g, c, e, C, L, R, ONE_ROW, MULTICLASS)
        p = tl.load(preds_ptr + preds_off, mask=mask, other=0.0).to(COMPUTE)
        wy, wn = _load_labels(target_ptr, weight_ptr, target_off, mask, c, ignore_int, ignore_float, COMPUTE,
                              MULTICLASS, HAS_WEIGHT, HAS_IGNORE, TARGET_FLOAT)
        p2 = p[:, None]
        if APPROX == 0:
            h = tl.where(p2 < a, m1 * p2, tl.where(p2 > b, m3 * p2 + c3, m2 * p2 + c2))
        elif APPROX == 1:
            h = tl.sigmoid(kk * (p2 - tau))
        else:
            h = (p2 >= tau).to(COMPUTE)
        acc_pos += tl.sum(wy[:, None] * h, axis=0).to(tl.float64)
        acc_neg += tl.sum(wn[:, None] * h, axis=0).to(tl.float64)
        tot_pos += tl.sum(wy, axis=0).to(tl.float64)
        tot_neg += tl.sum(wn, axis=0).to(tl.float64)

    out = partial_ptr + (pid * T + t_offs) * 4
    tl.store(out + 0, acc_pos, mask=t_mask)
    tl.store(out + 1, tot_pos, mask=t_mask)
    tl.store(out + 2, acc_neg, mask=t_mask)
    tl.store(out + 3, tot_neg, mask=t_mask)


@triton.jit
def _forward_histogram_kernel(
    preds_ptr,   # [N, C, L] float16/bfloat16/float32/float64
    target_ptr,  # [N, C, L] (MULTICLASS=False) or [N, L] class indices
    weight_ptr,  # target's shape, float32/float64 (unused unless HAS_WEIGHT)
    coef_ptr,    # [8, T] compute dtype, rows as in the module docstring
    hist_ptr,    # [S, 2 (T + 1), 4] float64, zeroed; atomically accumulated
    C, L, R, seg_len, T, n_chunks, chunk_size, ignore_int, ignore_float,
    APPROX: tl.constexpr, MULTICLASS: tl.constexpr, HAS_WEIGHT: tl.constexpr, HAS_IGNORE: tl.constexpr,
    TARGET_FLOAT: tl.constexpr, ONE_ROW: tl.constexpr, LOG2_T: tl.constexpr, BLOCK_SIZE: tl.constexpr,
):
    """O(N + T) forward for linear / step (float atomics: not bit-reproducible).

    linear: bin i1 = #{t: a_t <= p} (segment 1 for t >= i1) gets (w·y·p, w·y, w(1−y)p, w(1−y)) in rows
    [0, T]; bin i3 = #{t: b_t < p} (segment 3 for t < i3) gets the same in rows [T + 1, 2T + 1].
    step: bin j = #{t: tau_t <= p} (H = 1 for t < j) gets (0, w·y, 0, w(1−y)) in rows [0, T].
    """
    COMPUTE: tl.constexpr = coef_ptr.dtype.element_ty
    pid = tl.program_id(0).to(tl.int64)
    s = pid // n_chunks
    chunk = pid - s * n_chunks
    g = s // C
    c = s - g * C
    hist = hist_ptr + s * (2 * (T + 1) * 4)
    start = chunk * chunk_size
    for off in range(0, chunk_size, BLOCK_SIZE):
        e = start + off + tl.arange(0, BLOCK_SIZE).to(tl.int64)
        mask = e < seg_len
        preds_off, target_off = _element_offsets(g, c, e, C, L, R, ONE_ROW, MULTICLASS)
        p = tl.load(preds_ptr + preds_off, mask=mask, other=0.0).to(COMPUTE)
        wy, wn = _load_labels(target_ptr, weight_ptr, target_off, mask, c, ignore_int, ignore_float, COMPUTE,
                              MULTICLASS, HAS_WEIGHT, HAS_IGNORE, TARGET_FLOAT)
        live = mask & ((wy != 0) | (wn != 0))
        if APPROX == 0:
            i1 = _count_below(p, coef_ptr + 0 * T, T, LOG2_T, False)
            i3 = _count_below(p, coef_ptr + 1 * T, T, LOG2_T, True)
            bin1 = hist + i1 * 4
            bin3 = hist + (T + 1 + i3) * 4
            tl.atomic_add(bin1 + 0, (wy * p).to(tl.float64), mask=live, sem="relaxed")
            tl.atomic_add(bin1 + 1, wy.to(tl.float64), mask=live, sem="relaxed")
            tl.atomic_add(bin1 + 2, (wn * p).to(tl.float64), mask=live, sem="relaxed")
            tl.atomic_add(bin1 + 3, wn.to(tl.float64), mask=live, sem="relaxed")
            tl.atomic_add(bin3 + 0, (wy * p).to(tl.float64), mask=live, sem="relaxed")
            tl.atomic_add(bin3 + 1, wy.to(tl.float64), mask=live, sem="relaxed")
            tl.atomic_add(bin3 + 2, (wn * p).to(tl.float64), mask=live, sem="relaxed")
            tl.atomic_add(bin3 + 3, wn.to(tl.float64), mask=live, sem="relaxed")
        else:
            j = _count_below(p, coef_ptr + 2 * T, T, LOG2_T, False)
            bin_j = hist + j * 4
            tl.atomic_add(bin_j + 1, wy.to(tl.float64), mask=live, sem="relaxed")
            tl.atomic_add(bin_j + 3, wn.to(tl.float64), mask=live, sem="relaxed")


@triton.jit
def _backward_kernel(
    grad_out_ptr,  # [N, C, L] preds dtype: the gradient with respect to preds (written)
    preds_ptr,     # [N, C, L] float16/bfloat16/float32/float64
    target_ptr,    # [N, C, L] (MULTICLASS=False) or [N, L] class indices
    weight_ptr,    # target's shape, float32/float64 (unused unless HAS_WEIGHT)
    coef_ptr,      # [8, T] compute dtype, rows as in the module docstring
    table_ptr,     # linear: [S, T + 1, 4] float64 (U_A, V_A, U_B, V_B); sigmoid: [S, T, 2] compute dtype (g_A, g_B)
    n_elements, C, L, T, ignore_int, ignore_float,
    APPROX: tl.constexpr, MULTICLASS: tl.constexpr, HAS_WEIGHT: tl.constexpr, HAS_IGNORE: tl.constexpr,
    TARGET_FLOAT: tl.constexpr, SAMPLEWISE: tl.constexpr, SINGLE_SEGMENT: tl.constexpr, LOG2_T: tl.constexpr,
    BLOCK_SIZE: tl.constexpr, T_BLOCK: tl.constexpr,
):
    """grad[i] = w_i Σ_t H̃'(p_i, τ_t) (y_i g_A[t] + (1 − y_i) g_B[t]), g_A = g_tp − g_fn, g_B = g_fp − g_tn.

    linear: Σ_t over the segments is U[i1] + V[i3] with the prefix tables of triton_ops._linear_table;
    sigmoid: a loop over the thresholds in blocks of T_BLOCK.
    """
    COMPUTE: tl.constexpr = coef_ptr.dtype.element_ty
    offs = tl.program_id(0).to(tl.int64) * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE).to(tl.int64)
    mask = offs < n_elements
    if SINGLE_SEGMENT:  # C == 1 and global: one segment, target laid out like preds
        s = tl.zeros([BLOCK_SIZE], dtype=tl.int64)
        c = 0
        target_off = offs
    else:
        row = offs // L
        n = row // C
        c = row - n * C
        l_idx = offs - row * L
        if SAMPLEWISE:
            s = row
        else:
            s = c
        if MULTICLASS:
            target_off = n * L + l_idx
        else:
            target_off = offs
    p = tl.load(preds_ptr + offs, mask=mask, other=0.0).to(COMPUTE)
    wy, wn = _load_labels(target_ptr, weight_ptr, target_off, mask, c, ignore_int, ignore_float, COMPUTE,
                          MULTICLASS, HAS_WEIGHT, HAS_IGNORE, TARGET_FLOAT)
    if APPROX == 0:
        i1 = _count_below(p, coef_ptr + 0 * T, T, LOG2_T, False)
        i3 = _count_below(p, coef_ptr + 1 * T, T, LOG2_T, True)
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
            trow = table_ptr + (s[:, None] * T + t_offs[None, :]) * 2
            g_a = tl.load(trow + 0, mask=both, other=0.0)
            g_b = tl.load(trow + 1, mask=both, other=0.0)
            h = tl.sigmoid(kk * (p2 - tau))
            slope = kk * h * (1.0 - h)
            acc_a += tl.sum(slope * g_a, axis=1)
            acc_b += tl.sum(slope * g_b, axis=1)
        grad = wy * acc_a + wn * acc_b
    # Through the compute dtype: a direct float64 -> bfloat16 conversion is not supported everywhere.
    tl.store(grad_out_ptr + offs, grad.to(COMPUTE).to(grad_out_ptr.dtype.element_ty), mask=mask)
