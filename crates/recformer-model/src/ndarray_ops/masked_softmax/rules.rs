//! Which score columns each query row may attend to, as per-column tables built once per op.

/// Where a row's columns point: the dense `[l, l]` scores, or the sliding window's band.
#[derive(Debug, Clone, Copy)]
pub(super) enum Layout {
    /// `[batch, heads, l, l]`: column `j` is key `j`.
    Dense,
    /// `[batch, heads, l / w, w, 3w (+1)]` (`attention::sliding`): in query block `k`, column
    /// `c < 3w` is key `k·w + c - w`; column `3w`, when present, is token 0's global column.
    Band,
}

/// Which keys each query row may attend to: the reference's rule, from `[batch, l]` masks, as
/// per-column tables built once per op (so that a row's loop is branch-free and vectorises).
#[derive(Debug, Clone)]
pub(super) struct Allowed {
    layout: Layout,
    /// Tokens per sequence.
    l: usize,
    /// Columns per score row (`l` dense; `3w` or `3w + 1` band).
    pub(super) cols: usize,
    /// Score rows per sequence (`heads · l` in both layouts).
    rows_per_batch: usize,
    /// One-sided window.
    w: usize,
    /// `[batch · l]`: padding tokens, whose rows are zeroed.
    masked: Vec<bool>,
    /// Columns allowed when within the query's window: dense `[batch, l]` (not padding); band
    /// `[batch, l / w, cols]` (per query block: a key inside the sequence, neither padding nor
    /// global; never the global column).
    windowed: Vec<bool>,
    /// `[batch, cols]`: columns allowed for every query (dense: the global keys; band: the
    /// global column when token 0 is global).
    anywhere: Vec<bool>,
}

/// One score row's rule: column `c` is allowed iff `anywhere[c] ∨ (lo ≤ c ≤ hi ∧ windowed[c])`.
pub(super) struct RowRule<'a> {
    /// The row is a padding query's (zeroed).
    pub(super) padding: bool,
    lo: usize,
    hi: usize,
    pub(super) windowed: &'a [bool],
    pub(super) anywhere: &'a [bool],
}

impl Allowed {
    /// The tables of `layout` for scores of `cols` columns, `heads` heads and sequences of `l`
    /// tokens, from the `[batch · l]` padding and global flags.
    pub(super) fn new(
        layout: Layout,
        l: usize,
        cols: usize,
        heads: usize,
        w: usize,
        masks: [Vec<bool>; 2],
    ) -> Self {
        let [masked, global] = masks;
        let batch = masked.len() / l.max(1);
        let (windowed, anywhere) = match layout {
            Layout::Dense => (masked.iter().map(|&m| !m).collect(), global),
            Layout::Band => {
                let nb = l / w;
                let mut windowed = vec![false; batch * nb * cols];
                let mut anywhere = vec![false; batch * cols];
                for b in 0..batch {
                    let key_ok = |j: usize| !masked[b * l + j] && !global[b * l + j];
                    for k in 0..nb {
                        let row = &mut windowed[(b * nb + k) * cols..][..3 * w];
                        for (c, ok) in row.iter_mut().enumerate() {
                            // Column `c` of block `k` is key `k·w + c - w`.
                            let padded = k * w + c;
                            *ok = (w..l + w).contains(&padded) && key_ok(padded - w);
                        }
                    }
                    if cols > 3 * w {
                        anywhere[b * cols + 3 * w] = global[b * l];
                    }
                }
                (windowed, anywhere)
            }
        };
        Allowed {
            layout,
            l,
            cols,
            rows_per_batch: heads * l,
            w,
            masked,
            windowed,
            anywhere,
        }
    }

    /// The rule of score row `r` (row-major over the scores' leading dimensions; its query is
    /// token `r mod l` in both layouts).
    ///
    /// Dense (the reference's `(band ∧ ¬masked ∧ ¬global) ∨ global`): a global key, or a
    /// non-padding key within `w`. Band (`attention::sliding::band_probs`): the global column
    /// when token 0 is global; else a key inside the sequence, within `w` of the query, neither
    /// padding nor global (a global key's score is its column's).
    #[inline(always)]
    pub(super) fn row(&self, r: usize) -> RowRule<'_> {
        let (b, q) = (r / self.rows_per_batch, r % self.l);
        let (lo, hi, windowed) = match self.layout {
            Layout::Dense => (
                q.saturating_sub(self.w),
                q + self.w,
                &self.windowed[b * self.l..][..self.l],
            ),
            Layout::Band => {
                let (k, offset) = (q / self.w, q % self.w);
                let table = (b * (self.l / self.w) + k) * self.cols;
                (
                    offset,
                    offset + 2 * self.w,
                    &self.windowed[table..][..self.cols],
                )
            }
        };
        RowRule {
            padding: self.masked[b * self.l + q],
            lo,
            hi,
            windowed,
            anywhere: &self.anywhere[b * self.cols..][..self.cols],
        }
    }
}

impl RowRule<'_> {
    /// Whether column `c` is allowed (no short-circuit: the loops over a row vectorise).
    #[inline(always)]
    pub(super) fn allows(&self, c: usize, windowed: bool, anywhere: bool) -> bool {
        anywhere | ((self.lo <= c) & (c <= self.hi) & windowed)
    }
}
