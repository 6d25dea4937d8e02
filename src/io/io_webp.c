/* WebP codec on libwebp 1.2: still images decode straight into the image
 * buffer; animations give their first frame composited on the canvas. ICC
 * and EXIF come from the RIFF chunks via WebPDemux. Encoding writes u8 RGB(A)
 * lossy or lossless and adds an ICCP chunk with WebPMux. */
#include "io_internal.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <webp/decode.h>
#include <webp/demux.h>
#include <webp/encode.h>
#include <webp/mux.h>

/* Name of a decoder status, for error details. */
static const char *vp8_status_name(VP8StatusCode s)
{
    switch (s) {
    case VP8_STATUS_OK: return "OK";
    case VP8_STATUS_OUT_OF_MEMORY: return "OUT_OF_MEMORY";
    case VP8_STATUS_INVALID_PARAM: return "INVALID_PARAM";
    case VP8_STATUS_BITSTREAM_ERROR: return "BITSTREAM_ERROR";
    case VP8_STATUS_UNSUPPORTED_FEATURE: return "UNSUPPORTED_FEATURE";
    case VP8_STATUS_SUSPENDED: return "SUSPENDED";
    case VP8_STATUS_USER_ABORT: return "USER_ABORT";
    case VP8_STATUS_NOT_ENOUGH_DATA: return "NOT_ENOUGH_DATA (truncated)";
    default: return "unknown status";
    }
}

/* Maps a decoder status to an upres status and records the detail. */
static int webp_status_fail(upres_ctx *ctx, VP8StatusCode s, const char *what)
{
    int st = s == VP8_STATUS_OUT_OF_MEMORY       ? UPRES_ERR_NOMEM
             : s == VP8_STATUS_UNSUPPORTED_FEATURE ? UPRES_ERR_UNSUPPORTED
                                                   : UPRES_ERR_CORRUPT;
    return upres__fail(ctx, st, "WebP: %s: %s", what, vp8_status_name(s));
}

/* Attaches ICC (bounded by the limits) and reads the EXIF orientation from
 * the container's chunks. A file the demuxer rejects has no usable metadata;
 * the pixel decoder decides whether it is readable at all. */
static int read_metadata(upres_ctx *ctx, const WebPDemuxer *dmx, upres_image *img)
{
    if (!dmx) return UPRES_OK;
    const size_t max = upres__limits(ctx)->max_metadata_bytes;
    uint32_t flags = WebPDemuxGetI(dmx, WEBP_FF_FORMAT_FLAGS);
    WebPChunkIterator it;
    if ((flags & ICCP_FLAG) && WebPDemuxGetChunk(dmx, "ICCP", 1, &it)) {
        int st = UPRES_OK;
        if (it.chunk.size > 0 && it.chunk.size <= max)
            st = upres_image_set_icc(img, it.chunk.bytes, it.chunk.size);
        WebPDemuxReleaseChunkIterator(&it);
        if (st != UPRES_OK) return upres__fail(ctx, st, "WebP: ICC profile");
    }
    if ((flags & EXIF_FLAG) && WebPDemuxGetChunk(dmx, "EXIF", 1, &it)) {
        if (it.chunk.size <= max) img->orientation = upres__exif_orientation(it.chunk.bytes, it.chunk.size);
        WebPDemuxReleaseChunkIterator(&it);
    }
    return UPRES_OK;
}

/* First frame of an animation, composited on the (transparent) canvas. */
static int decode_animation(upres_ctx *ctx, const WebPData *data, int has_alpha,
                            upres_image **out, upres_file_info *info)
{
    const upres_limits *lim = upres__limits(ctx);
    WebPAnimDecoderOptions opts;
    if (!WebPAnimDecoderOptionsInit(&opts))
        return upres__fail(ctx, UPRES_ERR_UNSUPPORTED, "WebP: libwebpdemux version mismatch");
    opts.color_mode = MODE_RGBA;
    opts.use_threads = 0;
    /* The decoder allocates the canvas itself: check its size first. */
    WebPDemuxer *dmx = WebPDemux(data);
    if (!dmx) return upres__fail(ctx, UPRES_ERR_CORRUPT, "WebP: malformed or truncated animation");
    uint32_t cw = WebPDemuxGetI(dmx, WEBP_FF_CANVAS_WIDTH), chh = WebPDemuxGetI(dmx, WEBP_FF_CANVAS_HEIGHT);
    int st = upres_limits_check(lim, cw, chh, 4, 1);
    if (st != UPRES_OK) {
        WebPDemuxDelete(dmx);
        return upres__fail(ctx, st, "WebP: %ux%u canvas exceeds the limits", cw, chh);
    }
    /* The bitstream kind of the first frame tells whether it is lossless. */
    WebPIterator fit;
    if (WebPDemuxGetFrame(dmx, 1, &fit)) {
        WebPBitstreamFeatures ff;
        if (WebPGetFeatures(fit.fragment.bytes, fit.fragment.size, &ff) == VP8_STATUS_OK)
            info->lossless = ff.format == 2;
        WebPDemuxReleaseIterator(&fit);
    }
    WebPAnimDecoder *dec = WebPAnimDecoderNew(data, &opts);
    if (!dec) {
        WebPDemuxDelete(dmx);
        return upres__fail(ctx, UPRES_ERR_CORRUPT, "WebP: cannot start decoding the animation");
    }
    WebPAnimInfo ai;
    uint8_t *canvas = NULL;
    int ts = 0;
    upres_image *img = NULL;
    if (!WebPAnimDecoderGetInfo(dec, &ai) || ai.canvas_width != cw || ai.canvas_height != chh) {
        st = upres__fail(ctx, UPRES_ERR_CORRUPT, "WebP: bad animation header");
        goto done;
    }
    if (!WebPAnimDecoderGetNext(dec, &canvas, &ts) || !canvas) {
        st = upres__fail(ctx, UPRES_ERR_CORRUPT, "WebP: decoding the first frame failed");
        goto done;
    }
    info->frames = ai.frame_count >= 1 && ai.frame_count <= INT_MAX ? (int)ai.frame_count : 1;
    /* Keep alpha when the file says so, or when the first frame leaves part
     * of the canvas transparent. */
    const size_t npx = (size_t)cw * chh;
    int alpha = has_alpha;
    for (size_t i = 0; i < npx && !alpha; i++) alpha = canvas[i * 4 + 3] != 255;
    uint32_t ch = alpha ? 4 : 3;
    if ((st = upres_image_new(&img, cw, chh, ch, UPRES_U8, lim)) != UPRES_OK) {
        st = upres__fail(ctx, st, "WebP: %ux%u image", cw, chh);
        goto done;
    }
    for (uint32_t y = 0; y < chh; y++) {
        const uint8_t *s = canvas + (size_t)y * cw * 4;
        uint8_t *d = upres_image_row(img, y);
        if (ch == 4) {
            memcpy(d, s, (size_t)cw * 4);
        } else {
            for (uint32_t x = 0; x < cw; x++) memcpy(d + (size_t)x * 3, s + (size_t)x * 4, 3);
        }
    }
    st = read_metadata(ctx, dmx, img);
done:
    WebPAnimDecoderDelete(dec);
    WebPDemuxDelete(dmx);
    if (st != UPRES_OK) {
        upres_image_free(img);
        return st;
    }
    *out = img;
    return UPRES_OK;
}

int upres__webp_decode(upres_ctx *ctx, const uint8_t *buf, size_t size, upres_image **out,
                       upres_file_info *info)
{
    *out = NULL;
    const upres_limits *lim = upres__limits(ctx);
    WebPBitstreamFeatures f;
    VP8StatusCode vs = WebPGetFeatures(buf, size, &f);
    if (vs != VP8_STATUS_OK) return webp_status_fail(ctx, vs, "reading the header");
    if (f.width <= 0 || f.height <= 0)
        return upres__fail(ctx, UPRES_ERR_CORRUPT, "WebP: image of %dx%d pixels", f.width, f.height);
    info->width = (uint32_t)f.width;
    info->height = (uint32_t)f.height;
    info->bits_per_sample = 8;
    WebPData data = {buf, size};
    if (f.has_animation) return decode_animation(ctx, &data, f.has_alpha, out, info);

    info->lossless = f.format == 2;
    const uint32_t ch = f.has_alpha ? 4 : 3;
    int st = upres_limits_check(lim, (uint32_t)f.width, (uint32_t)f.height, ch, 1);
    if (st != UPRES_OK)
        return upres__fail(ctx, st, "WebP: %dx%d image exceeds the limits", f.width, f.height);
    upres_image *img;
    if ((st = upres_image_new(&img, (uint32_t)f.width, (uint32_t)f.height, ch, UPRES_U8, lim)) != UPRES_OK)
        return upres__fail(ctx, st, "WebP: %dx%d image", f.width, f.height);
    size_t total;
    if (img->stride > INT_MAX || !upres__mul_size(img->stride, img->height, &total)) {
        upres_image_free(img);
        return upres__fail(ctx, UPRES_ERR_OVERFLOW, "WebP: row of %zu bytes", img->stride);
    }
    /* WebPDecode with external memory is WebPDecodeRGB(A)Into, but it also
     * reports why decoding failed. */
    WebPDecoderConfig cfg;
    if (!WebPInitDecoderConfig(&cfg)) {
        upres_image_free(img);
        return upres__fail(ctx, UPRES_ERR_UNSUPPORTED, "WebP: libwebp version mismatch");
    }
    cfg.output.colorspace = ch == 4 ? MODE_RGBA : MODE_RGB;
    cfg.output.is_external_memory = 1;
    cfg.output.u.RGBA.rgba = img->data;
    cfg.output.u.RGBA.stride = (int)img->stride;
    cfg.output.u.RGBA.size = total;
    vs = WebPDecode(buf, size, &cfg);
    WebPFreeDecBuffer(&cfg.output);
    if (vs != VP8_STATUS_OK) {
        upres_image_free(img);
        return webp_status_fail(ctx, vs, "decoding");
    }
    WebPDemuxer *dmx = WebPDemux(&data);
    st = read_metadata(ctx, dmx, img);
    WebPDemuxDelete(dmx);
    if (st != UPRES_OK) {
        upres_image_free(img);
        return st;
    }
    *out = img;
    return UPRES_OK;
}

/* Name of an encoder error, for error details. */
static const char *enc_error_name(WebPEncodingError e)
{
    switch (e) {
    case VP8_ENC_ERROR_OUT_OF_MEMORY: return "out of memory";
    case VP8_ENC_ERROR_BITSTREAM_OUT_OF_MEMORY: return "out of memory for the bitstream";
    case VP8_ENC_ERROR_NULL_PARAMETER: return "null parameter";
    case VP8_ENC_ERROR_INVALID_CONFIGURATION: return "invalid configuration";
    case VP8_ENC_ERROR_BAD_DIMENSION: return "bad dimension";
    case VP8_ENC_ERROR_PARTITION0_OVERFLOW: return "partition 0 overflow";
    case VP8_ENC_ERROR_PARTITION_OVERFLOW: return "partition overflow";
    case VP8_ENC_ERROR_BAD_WRITE: return "write failed";
    case VP8_ENC_ERROR_FILE_TOO_BIG: return "file too big";
    case VP8_ENC_ERROR_USER_ABORT: return "aborted";
    default: return "unknown error";
    }
}

int upres__webp_encode(upres_ctx *ctx, const upres_image *img, const upres_encode_desc *desc,
                       const uint8_t *icc, size_t icc_size, uint8_t **out, size_t *out_size)
{
    *out = NULL;
    *out_size = 0;
    if (img->depth != UPRES_U8 || (img->channels != 3 && img->channels != 4))
        return upres__fail(ctx, UPRES_ERR_INVALID_ARG, "WebP: needs u8 RGB or RGBA");
    if (img->width > WEBP_MAX_DIMENSION || img->height > WEBP_MAX_DIMENSION)
        return upres__fail(ctx, UPRES_ERR_UNSUPPORTED, "WebP: %ux%u exceeds the format's %d-pixel side",
                           img->width, img->height, WEBP_MAX_DIMENSION);
    if (img->stride > INT_MAX)
        return upres__fail(ctx, UPRES_ERR_OVERFLOW, "WebP: row of %zu bytes", img->stride);
    int q = desc->quality < 1 ? 1 : desc->quality > 100 ? 100 : desc->quality;
    WebPConfig cfg;
    if (!WebPConfigPreset(&cfg, WEBP_PRESET_DEFAULT, (float)q))
        return upres__fail(ctx, UPRES_ERR_UNSUPPORTED, "WebP: libwebp version mismatch");
    if (desc->webp_lossless) {
        cfg.lossless = 1;
        /* Keep RGB under fully transparent pixels: lossless means lossless. */
        cfg.exact = 1;
    }
    if (!WebPValidateConfig(&cfg))
        return upres__fail(ctx, UPRES_ERR_INVALID_ARG, "WebP: invalid encoder configuration");

    WebPPicture pic;
    if (!WebPPictureInit(&pic))
        return upres__fail(ctx, UPRES_ERR_UNSUPPORTED, "WebP: libwebp version mismatch");
    pic.width = (int)img->width;
    pic.height = (int)img->height;
    pic.use_argb = 1;
    int ok = img->channels == 4 ? WebPPictureImportRGBA(&pic, img->data, (int)img->stride)
                                : WebPPictureImportRGB(&pic, img->data, (int)img->stride);
    if (!ok) {
        WebPPictureFree(&pic);
        return upres__fail(ctx, UPRES_ERR_NOMEM, "WebP: importing %ux%u pixels", img->width, img->height);
    }
    WebPMemoryWriter wr;
    WebPMemoryWriterInit(&wr);
    pic.writer = WebPMemoryWrite;
    pic.custom_ptr = &wr;
    ok = WebPEncode(&cfg, &pic);
    WebPEncodingError err = pic.error_code;
    WebPPictureFree(&pic);
    if (!ok) {
        WebPMemoryWriterClear(&wr);
        return upres__fail(ctx,
                           err == VP8_ENC_ERROR_OUT_OF_MEMORY ||
                                   err == VP8_ENC_ERROR_BITSTREAM_OUT_OF_MEMORY
                               ? UPRES_ERR_NOMEM
                               : UPRES_ERR_IO,
                           "WebP: encoding: %s", enc_error_name(err));
    }

    /* libwebp's buffers come from its own allocator; the caller free()s ours. */
    const uint8_t *res = wr.mem;
    size_t res_size = wr.size;
    WebPData assembled = {NULL, 0};
    WebPMux *mux = NULL;
    int st = UPRES_OK;
    if (icc && icc_size) {
        mux = WebPMuxNew();
        WebPData bits = {wr.mem, wr.size}, prof = {icc, icc_size};
        WebPMuxError me = mux ? WebPMuxSetImage(mux, &bits, 0) : WEBP_MUX_MEMORY_ERROR;
        if (me == WEBP_MUX_OK) me = WebPMuxSetChunk(mux, "ICCP", &prof, 0);
        if (me == WEBP_MUX_OK) me = WebPMuxAssemble(mux, &assembled);
        if (me != WEBP_MUX_OK) {
            st = upres__fail(ctx, me == WEBP_MUX_MEMORY_ERROR ? UPRES_ERR_NOMEM : UPRES_ERR_IO,
                             "WebP: adding the ICC profile (mux error %d)", (int)me);
            goto done;
        }
        res = assembled.bytes;
        res_size = assembled.size;
    }
    uint8_t *copy = malloc(res_size ? res_size : 1);
    if (!copy) {
        st = upres__fail(ctx, UPRES_ERR_NOMEM, "WebP: %zu-byte output", res_size);
        goto done;
    }
    memcpy(copy, res, res_size);
    *out = copy;
    *out_size = res_size;
done:
    WebPDataClear(&assembled);
    WebPMuxDelete(mux);
    WebPMemoryWriterClear(&wr);
    return st;
}
