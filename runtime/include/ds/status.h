/* Status codes returned by every ds_* C function: errors never cross the ABI as exceptions. */
#ifndef DS_STATUS_H
#define DS_STATUS_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum ds_status_code_e {
  DS_OK = 0,
  DS_INVALID_ARGUMENT = 1,
  DS_NOT_FOUND = 2,
  DS_DATA_LOSS = 3,       /* corrupt or truncated input file */
  DS_UNSUPPORTED = 4,     /* valid input we do not handle (yet) */
  DS_OUT_OF_MEMORY = 5,
  DS_INTERNAL = 6,
  DS_UNAVAILABLE = 7,     /* e.g. no CUDA driver on this machine */
  DS_FAILED_PRECONDITION = 8,
  DS_RESOURCE_EXHAUSTED = 9, /* a bounded queue is full; retry later (HTTP 429) */
} ds_status_code_t;

/* A status: code plus a heap-allocated message; NULL means DS_OK. */
typedef struct ds_status_s* ds_status_t;

ds_status_code_t ds_status_code(ds_status_t status);
/* Message text owned by the status; "" for NULL. */
const char* ds_status_message(ds_status_t status);
void ds_status_free(ds_status_t status);
const char* ds_status_code_name(ds_status_code_t code);

/* Version of the runtime library, "MAJOR.MINOR.PATCH". */
const char* ds_runtime_version(void);

#ifdef __cplusplus
}
#endif
#endif /* DS_STATUS_H */
