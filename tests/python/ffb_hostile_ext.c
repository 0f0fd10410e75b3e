/* A hostile CPython extension module for ffb's Python-helper tests
 * (tests/tests/integration/python.rs). Built by tests/build.rs against the
 * system's Python 3.11 headers into FFB_PY_EXT_DIR, which the tests pass as
 * --module-path. Each function attacks the helper it runs in; the tests
 * check, from the host, that the attack is contained and typed. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

/* A NULL write inside a method: SIGSEGV in the helper. */
static PyObject *segv(PyObject *self, PyObject *args) {
    (void)self;
    (void)args;
    *(volatile int *)(uintptr_t)8 = 1;
    Py_RETURN_NONE;
}

static char *target;
static size_t target_len;

static void *scribble(void *unused) {
    (void)unused;
    /* Keep writing garbage over the memory the last call's bytes argument
     * was read from, long after the call returned. */
    for (int i = 0; i < 2000; i++) {
        memset(target, 0xc1 + (i & 7), target_len);
        usleep(500);
    }
    return NULL;
}

/* Returns at once, leaving a thread that scribbles over `buffer`'s
 * contents (a bytearray the caller keeps) from then on. */
static PyObject *scribble_later(PyObject *self, PyObject *arg) {
    (void)self;
    if (!PyByteArray_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "scribble_later takes a bytearray");
        return NULL;
    }
    Py_INCREF(arg); /* never freed: the thread writes to it forever */
    target = PyByteArray_AS_STRING(arg);
    target_len = (size_t)PyByteArray_GET_SIZE(arg);
    pthread_t t;
    if (pthread_create(&t, NULL, scribble, NULL) != 0) {
        PyErr_SetString(PyExc_OSError, "pthread_create failed");
        return NULL;
    }
    pthread_detach(t);
    Py_RETURN_NONE;
}

/* Writes `value` at an address the caller picks. */
static PyObject *poke(PyObject *self, PyObject *args) {
    (void)self;
    unsigned long long address;
    int value;
    if (!PyArg_ParseTuple(args, "Ki", &address, &value))
        return NULL;
    *(volatile unsigned char *)(uintptr_t)address = (unsigned char)value;
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"segv", segv, METH_NOARGS, "Write through a near-NULL pointer."},
    {"scribble_later", scribble_later, METH_O, "Scribble over a bytearray from a thread."},
    {"poke", poke, METH_VARARGS, "Write one byte anywhere."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "ffb_hostile_ext", "A hostile extension module.", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit_ffb_hostile_ext(void) {
    return PyModule_Create(&module);
}
