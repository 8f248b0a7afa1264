/*
 * Market features of feature set fs1 in one C call: the compiled twin of _market_values_py
 * in backend/ml/market_features.py (same definitions, same order as MARKET_FEATURES).
 *
 * Built and verified against the Python reference at run time by backend/ml/native_features.py,
 * linked to the TA-Lib shared library that the `ta-lib` wheel ships (the one the talib module
 * has already loaded and initialised). TA-Lib indicators run over the whole window with
 * startIdx = 0, endIdx = n - 1, exactly as the talib wrapper calls them for NaN-free input:
 * recursive indicators (EMA, RSI, ATR, ADX, MACD) depend on where they start.
 *
 * No global mutable state: safe to call from several threads at once (the caller releases
 * the GIL). TA-Lib's own global settings (unstable periods, compatibility) are shared with the
 * talib module, so both paths see the same settings.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#include <numpy/ndarraytypes.h>

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

/* TA-Lib prototypes, as in talib/_ta_lib.pxd (TA_RetCode is an int enum, 0 = success). */
int TA_ATR(int, int, const double[], const double[], const double[], int, int *, int *,
           double[]);
int TA_ADX(int, int, const double[], const double[], const double[], int, int *, int *,
           double[]);
int TA_PLUS_DI(int, int, const double[], const double[], const double[], int, int *, int *,
               double[]);
int TA_MINUS_DI(int, int, const double[], const double[], const double[], int, int *, int *,
                double[]);
int TA_RSI(int, int, const double[], int, int *, int *, double[]);
int TA_EMA(int, int, const double[], int, int *, int *, double[]);
int TA_MACD(int, int, const double[], int, int, int, int *, int *, double[], double[],
            double[]);
int TA_BBANDS(int, int, const double[], int, double, double, int, int *, int *, double[],
              double[], double[]);
int TA_STOCH(int, int, const double[], const double[], const double[], int, int, int, int, int,
             int *, int *, double[], double[]);
int TA_MFI(int, int, const double[], const double[], const double[], const double[], int, int *,
           int *, double[]);

/* Parameters: keep in step with market_features.py (the load-time check compares numbers). */
#define N_MARKET 36
#define MIN_CANDLES 50
#define ATR_PERIOD 14
#define RSI_PERIOD 14
#define ADX_PERIOD 14
#define MFI_PERIOD 14
#define BB_PERIOD 20
#define BB_STDDEV 2.0
#define VOLUME_SMA_PERIOD 20
#define N_LOGS 31 /* log closes needed by the longest return (24) and volatility (30) window;
                     <= MIN_CANDLES */
#define STACK_N 256 /* windows up to this many candles use stack buffers, longer ones malloc */
#define PI 3.141592653589793 /* == Python's math.pi */

static const int RETURN_HORIZONS[] = {1, 3, 6, 12, 24};
static const int VOLATILITY_WINDOWS[] = {10, 30};
static const int MA_PERIODS[] = {10, 20, 50};
#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* Return codes: 0 ok, > 0 a TA-Lib TA_RetCode, < 0 these. */
#define FS1_TOO_FEW_CANDLES (-1)
#define FS1_NO_MEMORY (-2)
#define FS1_BAD_ARRAYS (-3)

int fs1_n_market(void) { return N_MARKET; }
int fs1_min_candles(void) { return MIN_CANDLES; }

/* numpy's pairwise summation (add.reduce on a contiguous float64 array), so sums, means and
 * the SMA features come out bit-identical to the Python reference. */
static double np_sum(const double *a, long n)
{
    if (n < 8) {
        double res = 0.;
        for (long i = 0; i < n; i++)
            res += a[i];
        return res;
    }
    if (n <= 128) {
        double r[8];
        long i;
        for (i = 0; i < 8; i++)
            r[i] = a[i];
        for (i = 8; i < n - (n % 8); i += 8)
            for (int j = 0; j < 8; j++)
                r[j] += a[i + j];
        double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; i++)
            res += a[i];
        return res;
    }
    long n2 = n / 2;
    n2 -= n2 % 8;
    return np_sum(a, n2) + np_sum(a + n2, n - n2);
}

/* The value talib would put at index n - 1 of its output array (NaN while warming up). */
static double last_value(const double *buf, int beg, int nb, int n)
{
    return (nb > 0 && beg + nb == n) ? buf[nb - 1] : NAN;
}

/* _ratio of the Python code: NaN unless the denominator is positive. */
static double ratio(double num, double den) { return den > 0 ? num / den : NAN; }

/*
 * Fill out[0..N_MARKET) with the market features of the last bar of these n candles (the
 * trailing window, oldest first). Returns 0, FS1_TOO_FEW_CANDLES, FS1_NO_MEMORY or the first
 * TA-Lib error code.
 */
int fs1_market(const int64_t *time, const double *o, const double *h, const double *l,
               const double *c, const double *v, int n, double *out)
{
    if (n < MIN_CANDLES)
        return FS1_TOO_FEW_CANDLES;
    double stack[3 * STACK_N];
    double *heap = NULL, *b0 = stack;
    if (n > STACK_N) {
        heap = malloc(3 * (size_t)n * sizeof(double));
        if (heap == NULL)
            return FS1_NO_MEMORY;
        b0 = heap;
    }
    double *b1 = b0 + n, *b2 = b1 + n;
    int rc, beg, nb, i = 0, last = n - 1;
    const double close = c[last];

    /* returns and volatility from the log closes of the last N_LOGS bars */
    double log_c[N_LOGS], log_ret[N_LOGS - 1];
    for (int k = 0; k < N_LOGS; k++)
        log_c[k] = log(c[n - N_LOGS + k]);
    for (int k = 0; k < N_LOGS - 1; k++)
        log_ret[k] = log_c[k + 1] - log_c[k];
    for (int k = 0; k < COUNT(RETURN_HORIZONS); k++)
        out[i++] = log_c[N_LOGS - 1] - log_c[N_LOGS - 1 - RETURN_HORIZONS[k]];
    for (int k = 0; k < COUNT(VOLATILITY_WINDOWS); k++) {
        int w = VOLATILITY_WINDOWS[k];
        const double *x = log_ret + (N_LOGS - 1 - w);
        double mean = np_sum(x, w) / w, ss = 0.;
        for (int j = 0; j < w; j++)
            ss += (x[j] - mean) * (x[j] - mean);
        out[i++] = sqrt(ss / w);
    }

#define TA(call)                                                                               \
    do {                                                                                       \
        if ((rc = (call)) != 0)                                                                \
            goto done;                                                                         \
    } while (0)

    TA(TA_ATR(0, last, h, l, c, ATR_PERIOD, &beg, &nb, b0));
    const double atr = last_value(b0, beg, nb, n);
    out[i++] = atr / close;
    out[i++] = ratio(h[last] - l[last], atr);
    TA(TA_RSI(0, last, c, RSI_PERIOD, &beg, &nb, b0));
    out[i++] = last_value(b0, beg, nb, n);
    TA(TA_MACD(0, last, c, 12, 26, 9, &beg, &nb, b0, b1, b2));
    out[i++] = ratio(last_value(b0, beg, nb, n), atr);
    out[i++] = ratio(last_value(b1, beg, nb, n), atr);
    out[i++] = ratio(last_value(b2, beg, nb, n), atr);
    TA(TA_BBANDS(0, last, c, BB_PERIOD, BB_STDDEV, BB_STDDEV, 0, &beg, &nb, b0, b1, b2));
    const double band = last_value(b0, beg, nb, n) - last_value(b2, beg, nb, n);
    out[i++] = band > 0 ? (close - last_value(b2, beg, nb, n)) / band : 0.5;
    out[i++] = ratio(band, last_value(b1, beg, nb, n));
    TA(TA_ADX(0, last, h, l, c, ADX_PERIOD, &beg, &nb, b0));
    out[i++] = last_value(b0, beg, nb, n);
    TA(TA_PLUS_DI(0, last, h, l, c, ADX_PERIOD, &beg, &nb, b0));
    const double plus_di = last_value(b0, beg, nb, n);
    TA(TA_MINUS_DI(0, last, h, l, c, ADX_PERIOD, &beg, &nb, b0));
    const double minus_di = last_value(b0, beg, nb, n);
    out[i++] = plus_di;
    out[i++] = minus_di;
    out[i++] = plus_di - minus_di;
    TA(TA_STOCH(0, last, h, l, c, 14, 3, 0, 3, 0, &beg, &nb, b0, b1));
    out[i++] = last_value(b0, beg, nb, n);
    out[i++] = last_value(b1, beg, nb, n);
    if (np_sum(v + n - MFI_PERIOD, MFI_PERIOD) > 0) {
        TA(TA_MFI(0, last, h, l, c, v, MFI_PERIOD, &beg, &nb, b0));
        out[i++] = last_value(b0, beg, nb, n);
    } else {
        out[i++] = 50.0; /* no volume data: neutral */
    }
    const double mean_volume = np_sum(v + n - VOLUME_SMA_PERIOD, VOLUME_SMA_PERIOD)
                               / VOLUME_SMA_PERIOD;
    out[i++] = mean_volume > 0 ? v[last] / mean_volume : 1.0;
    for (int k = 0; k < COUNT(MA_PERIODS); k++) {
        int p = MA_PERIODS[k];
        out[i++] = ratio(close - np_sum(c + n - p, p) / p, atr);
    }
    for (int k = 0; k < COUNT(MA_PERIODS); k++) {
        TA(TA_EMA(0, last, c, MA_PERIODS[k], &beg, &nb, b0));
        out[i++] = ratio(close - last_value(b0, beg, nb, n), atr);
    }
#undef TA

    /* candle shape of the last bar */
    const double rng = h[last] - l[last];
    const double top = o[last] > close ? o[last] : close;
    const double bottom = o[last] < close ? o[last] : close;
    if (rng > 0) {
        out[i++] = (close - o[last]) / rng;
        out[i++] = (h[last] - top) / rng;
        out[i++] = (bottom - l[last]) / rng;
    } else {
        out[i++] = 0.0;
        out[i++] = 0.0;
        out[i++] = 0.0;
    }

    /* time of day and day of week (UTC), with Python's floor division and modulo */
    int64_t day = time[last] / 86400, second = time[last] % 86400;
    if (second < 0) {
        second += 86400;
        day -= 1;
    }
    const double hour = (double)second / 3600.0;
    int64_t dow = (day + 3) % 7; /* 1970-01-01 was a Thursday (Monday = 0) */
    if (dow < 0)
        dow += 7;
    out[i++] = sin(2.0 * PI * hour / 24.0);
    out[i++] = cos(2.0 * PI * hour / 24.0);
    out[i++] = sin(2.0 * PI * (double)dow / 7.0);
    out[i++] = cos(2.0 * PI * (double)dow / 7.0);
    rc = 0;
done:
    free(heap);
    return rc;
}

/* --- numpy entry point -------------------------------------------------------------------- */

/* int64 is NPY_LONG on LP64 platforms, NPY_LONGLONG elsewhere; either is fine if 8 bytes. */
static int is_int64(int type_num)
{
    return (type_num == NPY_LONG && sizeof(long) == 8)
           || (type_num == NPY_LONGLONG && sizeof(long long) == 8);
}

/* A 1-D, contiguous, native-order int64 (`integer`) or float64 ndarray of exactly the type
 * `ndarray_type` (no subclass) with at least `need` items. */
static int is_vector(PyObject *obj, PyObject *ndarray_type, int integer, Py_ssize_t need)
{
    if ((PyObject *)Py_TYPE(obj) != ndarray_type)
        return 0;
    PyArrayObject *a = (PyArrayObject *)obj;
    int type_ok = integer ? is_int64(PyArray_TYPE(a)) : PyArray_TYPE(a) == NPY_DOUBLE;
    return type_ok && PyArray_NDIM(a) == 1 && PyArray_ISNOTSWAPPED(a)
           && PyArray_DIM(a, 0) >= need && (PyArray_DIM(a, 0) <= 1 || PyArray_STRIDE(a, 0) == 8);
}

/*
 * Market rows for bars first..last-1 of whole candle arrays, each from its trailing `window`
 * candles (fewer at the start of the series), written to `out`, a C-contiguous writeable
 * float64 array of (last - first) * N_MARKET items. Called through ctypes.PyDLL, so with
 * the GIL: one row (serving) keeps it, since a release would let another thread take it
 * for a whole switch interval; many rows (training) release it after the checks.
 * Returns FS1_BAD_ARRAYS when an argument is not as described (the caller then uses the
 * Python path), else as fs1_market.
 */
int fs1_market_rows(PyObject *ndarray_type, PyObject *time, PyObject *o, PyObject *h,
                    PyObject *l, PyObject *c, PyObject *v, Py_ssize_t first, Py_ssize_t last,
                    Py_ssize_t window, PyObject *out)
{
    if (first < 0 || last < first || window < 1 || window > INT32_MAX)
        return FS1_BAD_ARRAYS;
    if (!is_vector(time, ndarray_type, 1, last) || !is_vector(o, ndarray_type, 0, last)
        || !is_vector(h, ndarray_type, 0, last) || !is_vector(l, ndarray_type, 0, last)
        || !is_vector(c, ndarray_type, 0, last) || !is_vector(v, ndarray_type, 0, last))
        return FS1_BAD_ARRAYS;
    if ((PyObject *)Py_TYPE(out) != ndarray_type)
        return FS1_BAD_ARRAYS;
    PyArrayObject *res = (PyArrayObject *)out;
    Py_ssize_t size = 1;
    for (int d = 0; d < PyArray_NDIM(res); d++)
        size *= PyArray_DIM(res, d);
    if (PyArray_TYPE(res) != NPY_DOUBLE || !PyArray_ISNOTSWAPPED(res)
        || !PyArray_CHKFLAGS(res, NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_WRITEABLE)
        || size != (last - first) * N_MARKET)
        return FS1_BAD_ARRAYS;

    const int64_t *pt = PyArray_DATA((PyArrayObject *)time);
    const double *po = PyArray_DATA((PyArrayObject *)o), *ph = PyArray_DATA((PyArrayObject *)h),
                 *pl = PyArray_DATA((PyArrayObject *)l), *pc = PyArray_DATA((PyArrayObject *)c),
                 *pv = PyArray_DATA((PyArrayObject *)v);
    double *dst = PyArray_DATA(res);
    int rc = 0;
    PyThreadState *saved = last - first > 1 ? PyEval_SaveThread() : NULL;
    for (Py_ssize_t t = first; t < last && rc == 0; t++, dst += N_MARKET) {
        Py_ssize_t lo = t + 1 - window > 0 ? t + 1 - window : 0;
        rc = fs1_market(pt + lo, po + lo, ph + lo, pl + lo, pc + lo, pv + lo,
                        (int)(t + 1 - lo), dst);
    }
    if (saved != NULL)
        PyEval_RestoreThread(saved);
    return rc;
}
