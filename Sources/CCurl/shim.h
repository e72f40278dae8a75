#ifndef INPLACE_CCURL_SHIM_H
#define INPLACE_CCURL_SHIM_H
#include <curl/curl.h>

/* curl_easy_setopt and curl_easy_getinfo are variadic: Swift cannot call them.
   One typed wrapper per argument type the client uses. */

typedef size_t (*inplace_curl_data_callback)(char *ptr, size_t size, size_t nmemb, void *userdata);
typedef int (*inplace_curl_xferinfo_callback)(void *userdata, curl_off_t dltotal, curl_off_t dlnow,
                                              curl_off_t ultotal, curl_off_t ulnow);

static inline CURLcode inplace_curl_setopt_long(CURL *h, CURLoption o, long v) {
    return curl_easy_setopt(h, o, v);
}
static inline CURLcode inplace_curl_setopt_off(CURL *h, CURLoption o, curl_off_t v) {
    return curl_easy_setopt(h, o, v);
}
static inline CURLcode inplace_curl_setopt_string(CURL *h, CURLoption o, const char *v) {
    return curl_easy_setopt(h, o, v);
}
static inline CURLcode inplace_curl_setopt_pointer(CURL *h, CURLoption o, void *v) {
    return curl_easy_setopt(h, o, v);
}
static inline CURLcode inplace_curl_setopt_slist(CURL *h, CURLoption o, struct curl_slist *v) {
    return curl_easy_setopt(h, o, v);
}
static inline CURLcode inplace_curl_setopt_data_callback(CURL *h, CURLoption o, inplace_curl_data_callback v) {
    return curl_easy_setopt(h, o, v);
}
static inline CURLcode inplace_curl_setopt_xferinfo_callback(CURL *h, inplace_curl_xferinfo_callback v) {
    return curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, v);
}
static inline CURLcode inplace_curl_getinfo_long(CURL *h, CURLINFO i, long *v) {
    return curl_easy_getinfo(h, i, v);
}
static inline CURLcode inplace_curl_getinfo_off(CURL *h, CURLINFO i, curl_off_t *v) {
    return curl_easy_getinfo(h, i, v);
}
static inline CURLcode inplace_curl_getinfo_string(CURL *h, CURLINFO i, char **v) {
    return curl_easy_getinfo(h, i, v);
}
static inline CURLcode inplace_curl_getinfo_certinfo(CURL *h, struct curl_certinfo **v) {
    return curl_easy_getinfo(h, CURLINFO_CERTINFO, v);
}

/* Return values of callbacks that are macros in curl.h. */
static inline size_t inplace_curl_readfunc_abort(void) { return CURL_READFUNC_ABORT; }
static inline size_t inplace_curl_writefunc_error(void) { return 0xFFFFFFFF; }

#endif
