/* The encoding baseline: libjpeg-turbo, the encoder ustreamer and mjpg-streamer use,
 * turning the same YUYV frame into a JPEG the fastest ways its API offers.
 *
 *   turbo FILE WIDTH HEIGHT QUALITY RUNS
 *
 * FILE holds one YUYV frame. Three ways are timed, each over RUNS encodes:
 *   scanlines: each row unpacked to Y,Cb,Cr triples and handed to jpeg_write_scanlines,
 *              libjpeg downsampling the chroma (what ustreamer does);
 *   raw:       the frame unpacked once into 4:2:0 planes and handed to
 *              jpeg_write_raw_data, so libjpeg neither converts nor downsamples;
 *   raw-ifast: raw, with libjpeg's fast integer DCT (JDCT_IFAST, the AAN algorithm
 *              camfleet uses) instead of its default accurate one (JDCT_ISLOW).
 * All include the unpacking. Each prints: "<way> <CPU ms per frame> <bytes out>", with
 * the CPU time of this process (user + system). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <jpeglib.h>

static double cpu_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static void setup(struct jpeg_compress_struct *c, int w, int h, int quality) {
    c->image_width = w;
    c->image_height = h;
    c->input_components = 3;
    c->in_color_space = JCS_YCbCr;
    jpeg_set_defaults(c);
    jpeg_set_quality(c, quality, TRUE);
}

static unsigned long scanlines(const unsigned char *yuyv, int w, int h, int quality) {
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr err;
    unsigned char *out = NULL;
    unsigned long size = 0;
    unsigned char *row = malloc((size_t)w * 3);
    c.err = jpeg_std_error(&err);
    jpeg_create_compress(&c);
    jpeg_mem_dest(&c, &out, &size);
    setup(&c, w, h, quality);
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < (unsigned)h) {
        const unsigned char *s = yuyv + (size_t)c.next_scanline * w * 2;
        for (int x = 0; x < w; x += 2, s += 4) {
            unsigned char *d = row + x * 3;
            d[0] = s[0]; d[1] = s[1]; d[2] = s[3];
            d[3] = s[2]; d[4] = s[1]; d[5] = s[3];
        }
        JSAMPROW rows[1] = {row};
        jpeg_write_scanlines(&c, rows, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    free(row);
    free(out);
    return size;
}

static unsigned long raw(const unsigned char *yuyv, int w, int h, int quality,
                         unsigned char *planes, J_DCT_METHOD method) {
    unsigned char *py = planes, *pu = planes + w * h, *pv = pu + (w / 2) * (h / 2);
    for (int y = 0; y < h; y += 2) {
        const unsigned char *a = yuyv + (size_t)y * w * 2, *b = a + w * 2;
        unsigned char *ya = py + y * w, *yb = ya + w;
        unsigned char *u = pu + (y / 2) * (w / 2), *v = pv + (y / 2) * (w / 2);
        for (int x = 0; x < w; x += 2, a += 4, b += 4) {
            ya[x] = a[0]; ya[x + 1] = a[2];
            yb[x] = b[0]; yb[x + 1] = b[2];
            u[x / 2] = (a[1] + b[1] + 1) >> 1;
            v[x / 2] = (a[3] + b[3] + 1) >> 1;
        }
    }
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr err;
    unsigned char *out = NULL;
    unsigned long size = 0;
    c.err = jpeg_std_error(&err);
    jpeg_create_compress(&c);
    jpeg_mem_dest(&c, &out, &size);
    setup(&c, w, h, quality);
    c.dct_method = method;
    c.raw_data_in = TRUE;
    c.comp_info[0].h_samp_factor = 2; c.comp_info[0].v_samp_factor = 2;
    c.comp_info[1].h_samp_factor = 1; c.comp_info[1].v_samp_factor = 1;
    c.comp_info[2].h_samp_factor = 1; c.comp_info[2].v_samp_factor = 1;
    jpeg_start_compress(&c, TRUE);
    JSAMPROW yrows[16], urows[8], vrows[8];
    JSAMPARRAY data[3] = {yrows, urows, vrows};
    while (c.next_scanline < (unsigned)h) {
        for (int i = 0; i < 16; i++) {
            int r = c.next_scanline + i < (unsigned)h ? c.next_scanline + i : h - 1;
            yrows[i] = py + r * w;
        }
        for (int i = 0; i < 8; i++) {
            int r = c.next_scanline / 2 + i < (unsigned)h / 2 ? c.next_scanline / 2 + i : h / 2 - 1;
            urows[i] = pu + r * (w / 2);
            vrows[i] = pv + r * (w / 2);
        }
        jpeg_write_raw_data(&c, data, 16);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    free(out);
    return size;
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: turbo FILE WIDTH HEIGHT QUALITY RUNS\n");
        return 2;
    }
    int w = atoi(argv[2]), h = atoi(argv[3]), quality = atoi(argv[4]), runs = atoi(argv[5]);
    size_t len = (size_t)w * h * 2;
    unsigned char *yuyv = malloc(len), *planes = malloc((size_t)w * h * 2);
    FILE *f = fopen(argv[1], "rb");
    if (!f || fread(yuyv, 1, len, f) != len) {
        fprintf(stderr, "turbo: %s does not hold a %dx%d YUYV frame\n", argv[1], w, h);
        return 1;
    }
    fclose(f);
    unsigned long size = 0;
    double t0 = cpu_ms();
    for (int i = 0; i < runs; i++) size = scanlines(yuyv, w, h, quality);
    printf("scanlines %.3f %lu\n", (cpu_ms() - t0) / runs, size);
    t0 = cpu_ms();
    for (int i = 0; i < runs; i++) size = raw(yuyv, w, h, quality, planes, JDCT_ISLOW);
    printf("raw %.3f %lu\n", (cpu_ms() - t0) / runs, size);
    t0 = cpu_ms();
    for (int i = 0; i < runs; i++) size = raw(yuyv, w, h, quality, planes, JDCT_IFAST);
    printf("raw-ifast %.3f %lu\n", (cpu_ms() - t0) / runs, size);
    return 0;
}
