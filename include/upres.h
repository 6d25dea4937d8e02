/*
 * upres — high-resolution image processing: faithful image I/O, resampling,
 * and (later) tiled AI upscaling and the proxy workflow.
 *
 * Conventions of this API
 *  - Every fallible call returns an upres_status: UPRES_OK (0) or a negative
 *    error code. upres_strerror() names it; upres_ctx_error() gives the detail
 *    (which codec said what) of the last failure of a call made with a context.
 *  - Objects come in _new/_free pairs; every _free accepts NULL.
 *  - Descriptor structs are filled by their *_defaults() function first, then
 *    the caller changes the fields it cares about.
 *  - The library never aborts or exits on bad data, and checks every size
 *    computation for overflow. Image sizes are bounded by an upres_limits.
 *  - Threads: all parallel work runs on the pool owned by an upres_ctx.
 *    A context may be used by one calling thread at a time; separate contexts
 *    are independent. Images are plain data: concurrent reads are safe.
 */
#ifndef UPRES_H
#define UPRES_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define UPRES_VERSION_MAJOR 0
#define UPRES_VERSION_MINOR 1
#define UPRES_VERSION_PATCH 0
#define UPRES_VERSION_STRING "0.1.0"

/* Version of the library actually linked, e.g. "0.1.0". Static storage. */
const char *upres_version(void);

/* ------------------------------------------------------------------------ */
/* Status codes                                                              */

typedef enum upres_status {
    UPRES_OK = 0,
    UPRES_ERR_INVALID_ARG = -1,    /* a NULL pointer, a zero size, a bad enum */
    UPRES_ERR_NOMEM = -2,          /* allocation failed */
    UPRES_ERR_OVERFLOW = -3,       /* a size computation would overflow */
    UPRES_ERR_LIMIT = -4,          /* exceeds an upres_limits bound */
    UPRES_ERR_IO = -5,             /* a file could not be opened, read or written */
    UPRES_ERR_UNKNOWN_FORMAT = -6, /* the bytes are not an image format we read */
    UPRES_ERR_UNSUPPORTED = -7,    /* a valid file using a feature we lack */
    UPRES_ERR_CORRUPT = -8,        /* truncated or corrupt image data */
    UPRES_ERR_EXISTS = -9,         /* refusing to overwrite (e.g. the input) */
    UPRES_ERR_THREAD = -10,        /* a worker thread could not be started */
    UPRES_ERR_CANCELLED = -11,     /* the progress callback asked to stop */
    UPRES_ERR_EXTERNAL = -12,      /* an external program failed or could not start */
    UPRES_ERR_TIMEOUT = -13        /* an external program ran past its time limit */
} upres_status;

/* Short English name of a status ("corrupt or truncated image data").
 * Never NULL; unknown codes give "unknown error". Static storage. */
const char *upres_strerror(int status);

/* ------------------------------------------------------------------------ */
/* Limits                                                                    */

/* Bounds on what the library will allocate or accept from a file.
 * The defaults are safe for untrusted input on a desktop machine. */
typedef struct upres_limits {
    uint64_t max_pixels;         /* width*height of any image; default 268435456 (268 MP) */
    uint32_t max_side;           /* width and height each; default 65535 */
    size_t max_metadata_bytes;   /* ICC profile, EXIF block, each; default 16 MiB */
    uint64_t max_file_bytes;     /* size of an input file read into memory; default 4 GiB */
    uint64_t max_memory_bytes;   /* one pixel buffer; default 16 GiB */
    uint64_t max_model_bytes;    /* a model file, and the tensors it declares; default 2 GiB */
} upres_limits;

upres_limits upres_limits_defaults(void);

/* Checks a width x height image of `channels` samples of `bytes_per_sample`
 * against `lim` (NULL = defaults). Returns UPRES_OK, UPRES_ERR_INVALID_ARG
 * (zero size), UPRES_ERR_LIMIT or UPRES_ERR_OVERFLOW. */
int upres_limits_check(const upres_limits *lim, uint64_t width, uint64_t height,
                       uint32_t channels, uint32_t bytes_per_sample);

/* ------------------------------------------------------------------------ */
/* Images                                                                    */

/* Sample type. Value ranges: U8 0..255, U16 0..65535, F32 nominally 0..1
 * (values outside are kept by operations and clamped on 8/16-bit output). */
typedef enum upres_depth {
    UPRES_U8 = 1,
    UPRES_U16 = 2,
    UPRES_F32 = 3
} upres_depth;

/* Bytes per sample of a depth: 1, 2 or 4; 0 for an invalid value. */
size_t upres_depth_bytes(upres_depth depth);
/* "u8", "u16", "f32", or "?". */
const char *upres_depth_name(upres_depth depth);

/*
 * An interleaved image: `height` rows, each `width` pixels of `channels`
 * samples (1 gray, 2 gray+alpha, 3 RGB, 4 RGBA; alpha is straight, never
 * premultiplied), `stride` bytes apart (stride >= width*channels*bytes).
 * Samples are in host byte order.
 *
 * Ownership: an image made by upres_image_new() or returned by any upres_
 * call owns `data` and `icc`; upres_image_free() releases both. Fields may be
 * read freely; change them only through the functions below (or, for pixel
 * values, by writing into `data`).
 */
typedef struct upres_image {
    uint32_t width, height;  /* pixels, >= 1 */
    uint32_t channels;       /* 1..4 */
    upres_depth depth;
    size_t stride;           /* bytes from one row to the next */
    void *data;              /* height*stride bytes */
    uint8_t *icc;            /* ICC profile bytes or NULL; owned */
    size_t icc_size;
    /* EXIF orientation (1..8) that still applies to these pixels; 1 = upright.
     * Loading applies it by default, leaving 1. */
    int orientation;
} upres_image;

/* Allocates a zero-filled image with a packed stride. `lim` may be NULL
 * (defaults). On error *out is NULL. */
int upres_image_new(upres_image **out, uint32_t width, uint32_t height,
                    uint32_t channels, upres_depth depth, const upres_limits *lim);
void upres_image_free(upres_image *img);

/* Pointer to row y (no bounds check). */
static inline void *upres_image_row(const upres_image *img, uint32_t y)
{
    return (uint8_t *)img->data + (size_t)y * img->stride;
}

/* Replaces the ICC profile with a copy of `size` bytes (NULL/0 removes it). */
int upres_image_set_icc(upres_image *img, const void *icc, size_t size);

/* Deep copy, metadata included. */
int upres_image_clone(const upres_image *src, upres_image **out);

/*
 * Converts to another depth and/or channel layout into a new image.
 * Depth: u8<->u16 scale by 257 (rounded), ints->f32 divide by the maximum,
 * f32->ints clamp to [0,1] and round. Channels: gray->RGB replicates, RGB->gray
 * uses Rec. 709 luma weights, adding alpha makes it opaque, dropping alpha
 * composites over `background` (0..1, the same grey in every channel; 1 = white).
 * The ICC profile is kept when the colour model (gray vs RGB) is unchanged and
 * dropped otherwise.
 */
int upres_image_convert(const upres_image *src, upres_depth depth, uint32_t channels,
                        float background, upres_image **out);

/* Applies EXIF orientation `img->orientation` in place (the buffer may be
 * replaced, width/height may swap) and sets it to 1. */
int upres_image_apply_orientation(upres_image *img);

/* ------------------------------------------------------------------------ */
/* Context: thread pool, limits, error detail, progress                      */

typedef struct upres_ctx upres_ctx;

/* Progress callback: `done` of `total` work units of the current operation
 * (`what` names it, e.g. "resize"). Called only on the thread that made the
 * library call. Return nonzero to cancel (the call then fails with
 * UPRES_ERR_CANCELLED). */
typedef int (*upres_progress_fn)(void *user, const char *what, uint64_t done, uint64_t total);

typedef struct upres_ctx_desc {
    int threads;              /* worker threads incl. the caller; 0 = one per online CPU */
    upres_limits limits;
    upres_progress_fn progress; /* may be NULL */
    void *progress_user;
} upres_ctx_desc;

upres_ctx_desc upres_ctx_desc_defaults(void);

/* Creates a context (NULL desc = defaults). On error *out is NULL. */
int upres_ctx_new(const upres_ctx_desc *desc, upres_ctx **out);
void upres_ctx_free(upres_ctx *ctx);
/* Number of threads work is spread over (>= 1). */
int upres_ctx_threads(const upres_ctx *ctx);
const upres_limits *upres_ctx_limits(const upres_ctx *ctx);
/* Detail of the most recent failure of a call made with ctx, e.g.
 * "PNG: IDAT: CRC error"; "" when none. Valid until the next call. */
const char *upres_ctx_error(const upres_ctx *ctx);

/* ------------------------------------------------------------------------ */
/* Image files                                                               */

typedef enum upres_format {
    UPRES_FORMAT_UNKNOWN = 0,
    UPRES_FORMAT_PNG,
    UPRES_FORMAT_JPEG,
    UPRES_FORMAT_TIFF,
    UPRES_FORMAT_WEBP
} upres_format;

/* Format from the first bytes of a file (needs up to 16 bytes). */
upres_format upres_format_from_magic(const void *buf, size_t size);
/* Format from a file name's extension (.png .jpg .jpeg .jpe .tif .tiff .webp,
 * any case); UNKNOWN otherwise. Used only to choose an output format. */
upres_format upres_format_from_path(const char *path);
/* "PNG", "JPEG", "TIFF", "WebP", "unknown". */
const char *upres_format_name(upres_format fmt);

/* What a decoder saw in the file, besides the pixels. */
typedef struct upres_file_info {
    upres_format format;
    uint32_t width, height;   /* as stored, before orientation */
    int bits_per_sample;      /* in the file: 1..16, or 32 for float */
    int is_float;
    uint32_t channels;        /* of the decoded image */
    int orientation;          /* EXIF/TIFF orientation found, 1..8 (1 if none) */
    int frames;               /* frames in the file (animated WebP); 1 otherwise */
    int cmyk;                 /* converted from CMYK */
    int interlaced;           /* interlaced PNG / progressive JPEG */
    int lossless;             /* WebP: lossless bitstream */
    size_t icc_size;          /* bytes of ICC profile, 0 if none */
} upres_file_info;

typedef struct upres_decode_desc {
    int apply_orientation;    /* default 1: rotate/flip per EXIF and set orientation=1 */
} upres_decode_desc;

upres_decode_desc upres_decode_desc_defaults(void);

/* Decodes an image held in memory; the format comes from its magic bytes.
 * `desc` and `info` may be NULL. Limits come from ctx. Grayscale stays 1-2
 * channels; palette becomes RGB(A); 1-16 bit becomes u8 or u16; float TIFF
 * becomes f32; CMYK becomes RGB. */
int upres_decode(upres_ctx *ctx, const void *buf, size_t size, const upres_decode_desc *desc,
                 upres_image **out, upres_file_info *info);

/* Reads the file at `path` (at most limits.max_file_bytes) and decodes it. */
int upres_load(upres_ctx *ctx, const char *path, const upres_decode_desc *desc,
               upres_image **out, upres_file_info *info);

typedef struct upres_encode_desc {
    upres_format format;      /* required (use upres_format_from_path) */
    int quality;              /* JPEG and lossy WebP, 1..100; default 95 */
    int chroma_444;           /* JPEG: 1 = no chroma subsampling (default), 0 = 4:2:0 */
    int png_compression;      /* zlib level 0..9; default 6 */
    int webp_lossless;        /* default 0 */
    int bit_depth;            /* 0 = keep (16-bit PNG/TIFF for u16/f32 input, else 8),
                                 8 or 16 (PNG/TIFF); 32 = float TIFF */
    int write_icc;            /* default 1: store img->icc when the format can */
    float background;         /* alpha flattening for JPEG, 0..1; default 1 (white) */
} upres_encode_desc;

upres_encode_desc upres_encode_desc_defaults(void);

/* Encodes into a new malloc()ed buffer; the caller frees *out with free().
 * The image is converted as the format needs (JPEG: 8-bit, no alpha; WebP:
 * 8-bit RGB(A)). */
int upres_encode(upres_ctx *ctx, const upres_image *img, const upres_encode_desc *desc,
                 void **out, size_t *out_size);

/* Encodes and writes `path` atomically: a temporary file in the same folder,
 * then rename(). On failure no file is left behind and an existing `path` is
 * untouched. */
int upres_save(upres_ctx *ctx, const upres_image *img, const char *path,
               const upres_encode_desc *desc);

/* Writes `size` bytes to `path` atomically as upres_save does: a temporary
 * ".upres-XXXXXXXX.tmp" in the same folder, fsync, rename. When `path` is a
 * symbolic link, the link itself is replaced. ctx (may be NULL) receives the
 * error detail. */
int upres_write_file_atomic(upres_ctx *ctx, const char *path, const void *data, size_t size);

/* ------------------------------------------------------------------------ */
/* Resampling                                                                */

typedef enum upres_filter {
    UPRES_FILTER_LANCZOS3 = 0, /* sinc windowed by sinc, support 3 (default) */
    UPRES_FILTER_BICUBIC,      /* Keys cubic, a = -0.5, support 2 */
    UPRES_FILTER_MITCHELL,     /* Mitchell-Netravali B = C = 1/3, support 2 */
    UPRES_FILTER_BILINEAR,     /* triangle, support 1 */
    UPRES_FILTER_BOX,          /* area average, support 0.5 */
    UPRES_FILTER_NEAREST,      /* nearest neighbour */
    UPRES_FILTER_COUNT_
} upres_filter;

/* "lanczos3", "bicubic", "mitchell", "bilinear", "box", "nearest". */
const char *upres_filter_name(upres_filter f);
/* Parses the names above (plus "lanczos", "cubic", "linear", "area");
 * returns -1 when unknown. */
int upres_filter_from_name(const char *name);

typedef struct upres_resize_desc {
    uint32_t width, height;   /* output size in pixels, required */
    upres_filter filter;      /* default LANCZOS3 */
    int linear;               /* default 0: filter sRGB-encoded values as they are;
                                 1: convert to linear light, filter, convert back */
    /* Source region mapped onto the output, in source pixels (may be
     * fractional). All zero (the default) means the whole image. */
    double src_x, src_y, src_w, src_h;
} upres_resize_desc;

upres_resize_desc upres_resize_desc_defaults(void);

/*
 * Resizes `src` into a new image of desc->width x desc->height with the same
 * depth and channels (metadata copied). Separable; the filter is widened by
 * the scale factor when shrinking (antialiasing); the kernel window is clipped
 * at the image borders and renormalised. Images with alpha are filtered
 * premultiplied. For u8 without alpha the arithmetic reproduces Pillow's
 * fixed-point resampler.
 */
int upres_resize(upres_ctx *ctx, const upres_image *src, const upres_resize_desc *desc,
                 upres_image **out);

/* ------------------------------------------------------------------------ */
/* Streaming rows                                                            */

/* Shape of the rows a reader delivers or a writer accepts. Rows are
 * interleaved samples (width*channels of `depth`), host byte order. */
typedef struct upres_layout {
    uint32_t width, height;   /* pixels, >= 1 */
    uint32_t channels;        /* 1..4 as in upres_image */
    upres_depth depth;
} upres_layout;

typedef struct upres_reader upres_reader;

/*
 * Opens `path` for reading its pixels top to bottom in batches of rows.
 * Non-interlaced PNG, JPEG (baseline and progressive) and TIFF (strips or
 * tiles) are decoded incrementally: memory stays O(width) (TIFF tiles: one
 * row of tiles; progressive JPEG: libjpeg's coefficient buffer). Other files
 * (WebP, interlaced PNG, and any file whose orientation must be applied) are
 * decoded whole at open and served from memory; upres_reader_is_streaming()
 * tells which. The layout and samples are exactly those upres_load() gives
 * for the same file and desc. Limits come from ctx; ctx must outlive the
 * reader, and the reader is used by one thread at a time. `desc` and `info`
 * may be NULL. On error *out is NULL.
 */
int upres_reader_open(upres_ctx *ctx, const char *path, const upres_decode_desc *desc,
                      upres_reader **out, upres_file_info *info);
/* Layout of the delivered rows (orientation applied). */
upres_layout upres_reader_layout(const upres_reader *r);
/* The file's ICC profile (owned by the reader) or NULL with *size = 0. */
const uint8_t *upres_reader_icc(const upres_reader *r, size_t *size);
/* 1 when rows are decoded as they are read, 0 when decoded whole at open. */
int upres_reader_is_streaming(const upres_reader *r);
/* Decodes the next `rows` rows into `dst` (row k at dst + k*stride; stride >=
 * width*channels*bytes). Asking for more rows than remain is
 * UPRES_ERR_INVALID_ARG. After an error every later read fails. */
int upres_reader_read(upres_reader *r, void *dst, size_t stride, uint32_t rows);
void upres_reader_free(upres_reader *r);

typedef struct upres_writer upres_writer;

/*
 * Starts writing an image of `layout` to `path` in the format desc->format.
 * Rows go to a temporary file in path's folder (as upres_write_file_atomic
 * names it); PNG, JPEG and TIFF are encoded as rows arrive, WebP is gathered
 * and encoded at finish. Rows are converted as upres_encode() converts a
 * whole image (depth per desc->bit_depth, alpha flattened for JPEG, ...), so
 * the file equals what upres_save() writes for the same pixels. `icc` (may be
 * NULL) is copied and stored when desc->write_icc. ctx must outlive the
 * writer. On error *out is NULL and nothing is left on disk.
 */
int upres_writer_open(upres_ctx *ctx, const char *path, const upres_layout *layout,
                      const uint8_t *icc, size_t icc_size, const upres_encode_desc *desc,
                      upres_writer **out);
/* Appends `rows` rows from `src` (stride bytes apart) in the writer's layout.
 * Writing more than layout.height rows in total is UPRES_ERR_INVALID_ARG.
 * After an error the writer only accepts upres_writer_free(). */
int upres_writer_write(upres_writer *w, const void *src, size_t stride, uint32_t rows);
/* Once all rows are written: completes the file, fsyncs and renames it over
 * `path`. Fails (leaving nothing) when rows are missing. */
int upres_writer_finish(upres_writer *w);
/* Frees the writer; when upres_writer_finish() did not succeed, removes the
 * temporary file so `path` is untouched. */
void upres_writer_free(upres_writer *w);

/* ------------------------------------------------------------------------ */
/* External programs                                                         */

typedef struct upres_external_desc {
    /* Argument template, e.g. "realesrgan-ncnn-vulkan -i %i -o %o -s 4".
     * Split once into arguments at unquoted blanks; '...' and "..." group
     * (no expansion of any kind); outside quotes a backslash takes the next
     * character literally, inside "..." it escapes only " and \ (other
     * backslashes stay), as in the POSIX shell. Quotes do not protect '%':
     * write %%. Inside each argument %i becomes the input
     * file's path, %o the output file's path, %% a '%'; any other %x is an
     * error. Both %i and %o must appear. The first argument is the program,
     * looked up in PATH when it has no '/'. No shell is ever involved. */
    const char *command;
    double timeout_s;       /* default 600; the process group is killed after it;
                               <= 0 means no limit */
    const char *temp_dir;   /* parent of the private temp folder; NULL = $TMPDIR,
                               else /tmp */
    uint32_t width, height; /* size wanted; a result of another size is resized
                               to it with `filter`. 0, 0 = keep the tool's size;
                               only one of them 0 is UPRES_ERR_INVALID_ARG */
    upres_filter filter;    /* default LANCZOS3 */
} upres_external_desc;

upres_external_desc upres_external_desc_defaults(void);

/*
 * Runs an external image tool on `in`: creates a private folder (mkdtemp,
 * mode 0700) under temp_dir with absolute path, writes `in` there as a PNG
 * (16-bit kept), runs the program with exec (posix_spawn) in a new process
 * group, stdin and stdout from/to /dev/null, stderr captured (the last few
 * KiB are kept). While it runs, the ctx's progress callback gets
 * ("external", elapsed ms, timeout ms) about ten times a second; a nonzero
 * return kills the group and fails with UPRES_ERR_CANCELLED. Past the timeout
 * the group gets SIGTERM, then SIGKILL 2 s later, and the call fails with
 * UPRES_ERR_TIMEOUT. A nonzero exit, a death by signal or a missing/undecodable
 * output fail with UPRES_ERR_EXTERNAL; the ctx error detail then ends with the
 * tail of the tool's stderr (control characters replaced, one line).
 * When the tool exits, what is left of its process group is killed. The output
 * is decoded with ctx's limits, keeping its own channels and depth, and
 * resized to width x height when set and different (*resized = 1; may be
 * NULL). The private folder is removed in every case.
 */
int upres_external_run(upres_ctx *ctx, const upres_image *in, const upres_external_desc *desc,
                       upres_image **out, int *resized);


/* ------------------------------------------------------------------------ */
/* Proxy workflow                                                            */

/*
 * Where the scaled original sits in a proxy. The original is scaled to
 * content_width x content_height (aspect kept, fitted inside the target) and
 * placed at (content_x, content_y) of a proxy_width x proxy_height canvas;
 * the rest is padding (black; transparent black when the image has alpha).
 */
typedef struct upres_proxy_geometry {
    uint32_t original_width, original_height;
    uint32_t proxy_width, proxy_height;
    uint32_t content_x, content_y;
    uint32_t content_width, content_height;
} upres_proxy_geometry;

/* One side of a proxy target: pixels, or a percentage of the original. */
typedef struct upres_proxy_dim {
    double value;   /* > 0; pixels must be whole */
    int percent;    /* 1: value is a percentage (0 < value <= 10000) */
} upres_proxy_dim;

/*
 * Plans a proxy of a width x height original for the target tw x th.
 * Percentages become floor(side * value / 100) pixels. The scale is
 * min(TW/width, TH/height) computed in exact integer arithmetic: the side
 * that binds gets exactly its target, the other floor(side * scale) (at least
 * 1). When both targets are in pixels the canvas is exactly TW x TH with the
 * content centred: left/top padding = round(slack / 2) with ties to even
 * (as PIL's ImageOps.pad, used by imgproxyproc); otherwise the canvas is the
 * content. Fails with UPRES_ERR_INVALID_ARG for empty or invalid
 * targets and UPRES_ERR_LIMIT for sides over 65535.
 */
int upres_proxy_plan(uint32_t width, uint32_t height, upres_proxy_dim tw, upres_proxy_dim th,
                     upres_proxy_geometry *out);

#define UPRES_PROXY_METADATA_VERSION 1

/*
 * The `{stem}_proxy_metadata.txt` file: UTF-8 text, one `key=value` per line,
 * '#' lines are comments. Keys (all written, all read; unknown keys are
 * ignored so later versions can add some): format_version, original_path,
 * original_bytes, original_sha256, original_width, original_height,
 * original_channels, original_depth, proxy_path, proxy_width, proxy_height,
 * proxy_depth, content_x, content_y, content_width, content_height,
 * pad_left, pad_top, pad_right, pad_bottom (implied by the content box and
 * checked against it), filter, scale (informational). Paths are written
 * with \\ \n \r escaped. Files written by imgproxyproc (original_path,
 * original_width/height, proxy_width/height, proxy_path only) are accepted:
 * the content box is then recomputed with upres_proxy_plan.
 */
typedef struct upres_proxy_metadata {
    int format_version;            /* 0 when read from an imgproxyproc file */
    char original_path[4096];
    uint64_t original_bytes;       /* file size; 0 = unknown */
    char original_sha256[65];      /* lowercase hex, "" = unknown */
    uint32_t original_channels;    /* 0 = unknown */
    int original_depth;            /* bits: 8, 16, 32; 0 = unknown */
    char proxy_path[4096];
    int proxy_depth;               /* 8 or 16 */
    upres_filter filter;
    upres_proxy_geometry geom;
} upres_proxy_metadata;

/* Formats `m` into a malloc()ed NUL-terminated text (*size excludes the NUL). */
int upres_proxy_metadata_format(const upres_proxy_metadata *m, char **text, size_t *size);
/* Parses metadata text; checks that the geometry is consistent (content box
 * inside the canvas, padding agreeing with it, sides within limits). Errors
 * name the line: "line 4: original_width: not a number". */
int upres_proxy_metadata_parse(upres_ctx *ctx, const char *text, size_t size,
                               upres_proxy_metadata *out);
int upres_proxy_metadata_save(upres_ctx *ctx, const char *path, const upres_proxy_metadata *m);
int upres_proxy_metadata_load(upres_ctx *ctx, const char *path, upres_proxy_metadata *out);

/* SHA-256 of a file, as 64 lowercase hex digits + NUL into hex[65]; also
 * returns its size in *bytes (may be NULL). Reads in small blocks. */
int upres_sha256_file(upres_ctx *ctx, const char *path, char hex[65], uint64_t *bytes);

/*
 * Makes the proxy of `orig` per `g`: resized to the content box with the
 * antialiased `filter` (upres_resize; for 8-bit images without alpha the
 * result is Pillow's), placed on the padded canvas, converted to `depth`
 * (U8 or U16). Channels and ICC profile are kept.
 */
int upres_proxy_make(upres_ctx *ctx, const upres_image *orig, const upres_proxy_geometry *g,
                     upres_filter filter, upres_depth depth, upres_image **out);

/*
 * Delta images: what a model changed in the proxy. Values are normalised
 * (8-bit samples / 255, 16-bit / 65535) so proxy and processed may differ in
 * depth. An 8-bit delta stores clip(round(255 * (processed - proxy)) + 127)
 * (127 = no change; imgproxyproc's encoding); a 16-bit one stores
 * 32768 + round(32640 * (processed - proxy)), which holds any change without
 * clipping (for 8-bit images exactly 128 per level).
 * Channels: colour channels = 3 when either image is RGB, else 1; alpha when
 * `processed` has alpha (a missing proxy alpha counts as opaque). A gray
 * image compared with an RGB one is replicated to RGB first.
 * `refined` (may be NULL; 8-bit only) receives
 * clip(processed - clip(proxy + delta - 127) + 127): the residual that the
 * clipped 8-bit delta could not carry. Sizes must match
 * (UPRES_ERR_INVALID_ARG, detail "Proxy and processed images must have same
 * size ...").
 */
int upres_proxy_delta(upres_ctx *ctx, const upres_image *proxy, const upres_image *processed,
                      int bits, upres_image **delta, upres_image **refined);

/* How a delta is brought to the original's size. */
typedef struct upres_delta_upscale {
    upres_filter filter;      /* used when command is NULL; default LANCZOS3 */
    const char *command;      /* external tool template (upres_external_desc.command)
                                 run on the delta's content box; NULL = filter */
    double timeout_s;         /* for command; default 600 */
} upres_delta_upscale;

/* How merge carries the change back to the original. */
typedef enum upres_merge_method {
    UPRES_MERGE_AUTO = 0, /* per image: delta, guided or guided + residual,
                             by how well each predicts the processed proxy
                             from the pair at half resolution (see
                             docs/proxy.md); delta when alpha changes */
    UPRES_MERGE_DELTA,    /* add the upscaled delta (imgproxyproc's merge) */
    UPRES_MERGE_GUIDED    /* bilateral grid of affine colour transforms */
} upres_merge_method;

/* What a merge did (filled when upres_merge_desc.report is set). */
typedef struct upres_merge_report {
    upres_merge_method method;  /* DELTA or GUIDED: what was applied */
    int residual;               /* GUIDED: the residual was added */
    /* AUTO only: PSNR (dB, capped at 99) with which delta, guided and guided
     * + residual fitted at half resolution predict the processed proxy. */
    double auto_psnr[3];
    int grid_nx, grid_ny, grid_nz; /* GUIDED: cells of the grid */
    int iterations;             /* GUIDED: conjugate-gradient iterations */
} upres_merge_report;

typedef struct upres_merge_desc {
    const char *original_path;        /* read in strips (upres_reader) */
    const char *output_path;          /* written in strips (upres_writer), atomically */
    const upres_image *delta;         /* 8- or 16-bit delta, the proxy's size */
    const upres_image *refined;       /* optional second 8-bit delta, same size */
    upres_delta_upscale upscale, refined_upscale;
    /* Proxy geometry; NULL = upres_proxy_plan(original size, delta size in pixels). */
    const upres_proxy_geometry *geom;
    upres_encode_desc encode;         /* format required */
    const char *temp_dir;             /* for external tools; NULL = default */
    uint32_t strip_rows;              /* rows per strip; 0 = 64 */
    /* Method (default AUTO). GUIDED and AUTO recompute the proxy from the
     * original as split made it (proxy_filter, proxy_depth: the metadata's
     * filter and proxy_depth; defaults LANCZOS3 and U8) and take processed =
     * proxy + delta (+ refined delta), clipped to [0,1]. An upscale.command
     * (external tool) needs DELTA; AUTO then uses DELTA. */
    upres_merge_method method;
    int residual;                     /* GUIDED: also add the fit's residual,
                                         upscaled with upscale.filter */
    double grid_cell;                 /* proxy pixels per cell side; default 16 */
    int grid_bins;                    /* luma cells; default 8 (1..64) */
    double smoothness;                /* neighbour weight; default 1 (0..1000) */
    upres_filter proxy_filter;
    upres_depth proxy_depth;
    upres_merge_report *report;       /* optional: receives what was done */
} upres_merge_desc;

upres_merge_desc upres_merge_desc_defaults(void);

/*
 * Merges the processed proxy's change into the original and writes the
 * result. DELTA: each delta is cropped to the content box, its offset removed
 * (127 or 32768, as float levels of the original's range), upscaled to the
 * original's size (filter: float separable resampling computed strip by
 * strip; command: the external tool's result, resized to the exact size when
 * its scale differs), added in float and rounded once and clamped to the
 * original's range (f32 originals are not clamped). Output keeps the
 * original's depth and ICC; channels: colour = max of original and delta,
 * alpha when either has it. A delta of pure 127 (32768) returns the original
 * bit-exact. Memory: strip buffers plus the delta, independent of the
 * original's height (and of its size for streaming formats, see
 * upres_reader). Progress: ("merge", rows done, rows).
 *
 * GUIDED: the original is read twice, once to recompute the proxy (streamed,
 * bit-identical to upres_proxy_make), once to apply the grid. On the proxy's
 * content box (padding excluded; pixels weighted by alpha) a grid of
 * (content/grid_cell) x ... x grid_bins cells of 3x4 affine colour transforms
 * over (x, y, luma) is fitted by least squares with smoothness between
 * neighbouring cells and a weak pull toward the identity; each pixel of the
 * original gets the trilinear blend of the transforms at its position and
 * luma, applied to its colour, plus with `residual` the upscaled part of the
 * processed proxy the grid missed. Alpha passes through untouched (alpha
 * changes in the delta are ignored; AUTO takes DELTA for them); channels as
 * for DELTA (alpha opaque when only the delta has it). Rounded
 * once, clamped as DELTA. A delta of no change returns the original within
 * +-1 level. The result does not depend on the number of threads. Memory:
 * DELTA's plus a few proxy-sized float planes and, during the fit, about
 * 11.5 KB per grid vertex ((cells_x+1)(cells_y+1)(grid_bins+1)).
 */
int upres_proxy_merge(upres_ctx *ctx, const upres_merge_desc *desc);

/* ------------------------------------------------------------------------ */
/* AI models                                                                 */

/* A loaded super-resolution / restoration network. Opaque. One upscale at a
 * time per model (it holds its planned buffers); load a model once per
 * thread to run several concurrently. */
typedef struct upres_model upres_model;

typedef struct upres_model_info {
    char name[128];       /* file name without extension */
    char format[16];      /* "pth", "safetensors", "ncnn" */
    char arch[48];        /* "RRDBNet", "SRVGGNetCompact", "waifu2x-cunet", "RealCUGAN-se", ... */
    int scale;            /* output side / input side of the network */
    int channels;         /* 3 (RGB) or 1 (gray) colour channels the network takes */
    uint64_t params;      /* parameter count */
    int context;          /* suggested tile padding, input pixels */
    int global_pooling;   /* 1 when the network averages over its whole input
                             (squeeze-excitation blocks: Real-CUGAN, waifu2x
                             cunet): split into several tiles, its result
                             differs from a whole-image run, up to visible
                             seams; give it enough memory for one tile */
} upres_model_info;

/*
 * Loads a model file. The format is judged from the bytes, never the name:
 * PyTorch .pth/.pt (zip or legacy), .safetensors, or an ncnn .param (its .bin
 * is the file with the same stem; a .bin path finds its .param). The
 * architecture is recognised from tensor names and shapes. Files are
 * untrusted: a pickle is read by a restricted reader that executes nothing.
 * Size bounded by limits.max_model_bytes. Errors: UPRES_ERR_IO,
 * UPRES_ERR_UNKNOWN_FORMAT, UPRES_ERR_CORRUPT, UPRES_ERR_UNSUPPORTED (an
 * architecture or pickle feature we do not handle; the ctx detail names it),
 * UPRES_ERR_LIMIT. On error *out is NULL.
 */
int upres_model_load(upres_ctx *ctx, const char *path, upres_model **out);
void upres_model_free(upres_model *m); /* NULL is safe */
void upres_model_get_info(const upres_model *m, upres_model_info *info);

/* ------------------------------------------------------------------------ */
/* Upscaling                                                                 */

typedef enum upres_color_mode {
    UPRES_COLOR_RGB = 0,  /* R, G, B through the network */
    UPRES_COLOR_LUMA      /* only luma through the network (as Y,Y,Y); hue and
                             chroma (CIELAB a*, b*) are those of a bicubic
                             upscale, whose lightness L* moves by what the
                             network changed: colours cannot drift */
} upres_color_mode;

typedef enum upres_alpha_mode {
    UPRES_ALPHA_LANCZOS = 0, /* alpha resized by lanczos3 */
    UPRES_ALPHA_MODEL        /* alpha through the network as gray */
} upres_alpha_mode;

typedef struct upres_upscale_desc {
    /* Output size. width and height both 0: input * scale; only one 0: kept
     * in proportion. scale 0 = the model's scale (2 with no model). */
    uint32_t width, height;
    double scale;
    uint32_t tile;            /* tile side in input pixels; 0 = from memory_bytes */
    int tile_pad;             /* context on each tile side, input pixels;
                                 -1 (default) = the model's suggestion */
    uint64_t memory_bytes;    /* budget for choosing the tile; 0 = a quarter of RAM, at most 512 MiB */
    upres_color_mode color;
    upres_alpha_mode alpha;
} upres_upscale_desc;

upres_upscale_desc upres_upscale_desc_defaults(void);

/*
 * Upscales `in` with `model` (NULL = lanczos3 only) into a new image of the
 * requested size. The network runs on overlapping tiles whose results are
 * blended with feathered weights; image borders are mirror-padded. The
 * network's result is then resized with lanczos3 to the exact size when it
 * differs. Gray images run as RGB and come back gray; alpha follows
 * desc->alpha; u16 and f32 inputs are processed in float and keep their
 * depth; the ICC profile is kept. Progress: ("upscale", tiles done, tiles).
 */
int upres_upscale(upres_ctx *ctx, upres_model *model, const upres_image *in,
                  const upres_upscale_desc *desc, upres_image **out);

/* What upres_upscale would do for a w x h input with `desc` (NULL =
 * defaults), without running anything: the tile side it would use (from
 * desc->tile or the memory budget), the number of tiles, and the bytes one
 * tile needs (network activations plus tile buffers; they depend on the
 * ctx's thread count). Any output may be NULL. The tile count is per pass:
 * with alpha and UPRES_ALPHA_MODEL every tile runs twice. Without a model:
 * tile 0, tiles 1, tile_bytes 0. Errors: UPRES_ERR_INVALID_ARG (w or h 0, a
 * bad desc), UPRES_ERR_LIMIT (w x h over the ctx's limits); outputs are
 * zeroed on error. */
int upres_upscale_plan(upres_ctx *ctx, upres_model *model, uint32_t w, uint32_t h,
                       const upres_upscale_desc *desc, uint32_t *tile, uint32_t *tiles,
                       uint64_t *tile_bytes);

/* ------------------------------------------------------------------------ */
/* Fidelity metrics                                                          */

typedef struct upres_metrics_desc {
    uint32_t shave;   /* pixels left out at every border (as SR benchmarks
                         do); default 0 */
} upres_metrics_desc;

upres_metrics_desc upres_metrics_desc_defaults(void);

/* Differences between two images of the same size. Values are computed on
 * samples scaled to [0,1] (u8 / 255, u16 / 65535, f32 clamped), so an 8-bit
 * and a 16-bit image compare directly; gray counts as R = G = B. Alpha: the
 * colour channels are compared as stored (straight alpha), alpha
 * differences count only in max_abs, and a missing alpha channel counts as
 * opaque. */
typedef struct upres_metrics {
    uint32_t width, height;  /* compared area (after shave) */
    double psnr;             /* dB over R, G, B; INFINITY when identical */
    double psnr_y;           /* dB over BT.601 luma Y' (on the sRGB-encoded values) */
    double ssim;             /* mean SSIM of R, G, B: Wang et al. 2004, Gaussian
                                window 11x11, sigma 1.5, K1 0.01, K2 0.03, as
                                skimage structural_similarity(gaussian_weights=True,
                                sigma=1.5, use_sample_covariance=False); NAN when
                                the compared area is smaller than 11x11 */
    double ssim_y;           /* the same on Y' */
    double de_mean, de_max, de_p95; /* CIEDE2000 (sRGB D65 -> CIELAB): mean
                                ("colour drift"), maximum, 95th percentile */
    double max_abs;          /* largest |a - b| of any sample incl. alpha, in
                                8-bit levels (0..255 scale) */
} upres_metrics;

/* Computes all metrics of a against b. Errors: UPRES_ERR_INVALID_ARG (NULL,
 * different sizes, shave leaving nothing), UPRES_ERR_LIMIT, UPRES_ERR_NOMEM,
 * UPRES_ERR_CANCELLED. Uses the ctx's threads. */
int upres_metrics_compute(upres_ctx *ctx, const upres_image *a, const upres_image *b,
                          const upres_metrics_desc *desc, upres_metrics *out);

#ifdef __cplusplus
}
#endif
#endif /* UPRES_H */
