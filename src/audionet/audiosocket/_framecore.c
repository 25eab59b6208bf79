/* The per-frame core of a call, in C: the twin of audionet.audiosocket.framecore.PyFrameCore.
 *
 * Each function here does what the Python method of the same name there does, in the same order,
 * with the same double arithmetic (compiled with -ffp-contract=off, so no fused multiply-add
 * changes a rounding), calling the same Python methods for everything else (_lock, _reschedule,
 * _pass, _received, _reply). A property test runs both twins on the same inputs and compares
 * every field after every step (tests/audiosocket/test_framecore.py).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <math.h>
#include <string.h>
#include <time.h>

static double PERIOD, SLOT, EARLY, MIN_GAP, AIM;
static int configured = 0;

static PyObject *s_lock, *s_reschedule, *s_pass, *s_received, *s_reply, *s_tick_slow,
    *s_send_ticked, *s_popleft, *s_call, *s_room_waiter, *s_on_sent, *s_out, *s_silence,
    *s_silence_message;

typedef struct {
    PyObject_HEAD
    /* the clock */
    double due;
    double grid;
    double open;
    double last;
    int sample;
    int next_sample;
    char off_grid;
    char stopped;
    /* the straight path */
    char echo;
    char paused;
    Py_ssize_t fast_len;
    Py_ssize_t echoed;
    Py_ssize_t ticked;
    Py_ssize_t silenced;
    PyObject *fast_head;
    PyObject *msgs;
    PyObject *pcm;
    PyObject *write;
} FrameCore;

static PyObject *
FrameCore_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    FrameCore *self = (FrameCore *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    self->last = -INFINITY;
    self->sample = 1;
    self->next_sample = 1;
    self->fast_head = PyBytes_FromStringAndSize(NULL, 0);
    if (self->fast_head == NULL) {
        Py_DECREF(self);
        return NULL;
    }
    self->msgs = Py_NewRef(Py_None);
    self->pcm = Py_NewRef(Py_None);
    self->write = Py_NewRef(Py_None);
    return (PyObject *)self;
}

static int
FrameCore_traverse(FrameCore *self, visitproc visit, void *arg)
{
    Py_VISIT(self->fast_head);
    Py_VISIT(self->msgs);
    Py_VISIT(self->pcm);
    Py_VISIT(self->write);
    /* not Py_TYPE(self): a static type; a heap subclass's own traverse visits its type */
    return 0;
}

static int
FrameCore_clear(FrameCore *self)
{
    Py_CLEAR(self->fast_head);
    Py_CLEAR(self->msgs);
    Py_CLEAR(self->pcm);
    Py_CLEAR(self->write);
    return 0;
}

static void
FrameCore_dealloc(FrameCore *self)
{
    PyObject_GC_UnTrack(self);
    FrameCore_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* A Python method of self with double arguments; 0, or -1 with an exception set. */
static int
call_method(FrameCore *self, PyObject *name, int nargs, double a, double b, int check)
{
    PyObject *args[4] = {(PyObject *)self, NULL, NULL, NULL};
    PyObject *res;
    args[1] = PyFloat_FromDouble(a);
    if (args[1] == NULL)
        return -1;
    if (nargs >= 2) {
        args[2] = PyFloat_FromDouble(b);
        if (args[2] == NULL) {
            Py_DECREF(args[1]);
            return -1;
        }
    }
    if (nargs >= 3)
        args[3] = check ? Py_True : Py_False;
    res = PyObject_VectorcallMethod(name, args, (size_t)(nargs + 1) | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
    Py_DECREF(args[1]);
    Py_XDECREF(args[2]);
    if (res == NULL)
        return -1;
    Py_DECREF(res);
    return 0;
}

/* FrameCore._clock: 1 (the next frame leaves now), 0, or -1 with an exception set. */
static int
decide(FrameCore *self, double now, int heard)
{
    double grid, opens;
    if (heard) {
        int sample = self->sample;
        if (sample) {
            double miss;
            self->sample = 0;
            miss = now - self->due + AIM;
            if (miss > SLOT || miss < -SLOT || sample == 2) {
                if (call_method(self, s_lock, 3, now, miss, sample == 2) < 0)
                    return -1;
            }
        }
        if (now < self->open)
            return 0;
    }
    if (self->stopped) {
        if (!heard && call_method(self, s_pass, 1, now, 0.0, 0) < 0)
            return -1;
        return 0;
    }
    self->last = now;
    self->sample = self->next_sample;
    grid = self->grid + PERIOD;
    self->grid = grid;
    opens = grid - EARLY;
    if (now + MIN_GAP <= opens && !self->off_grid) {
        self->due = grid;
        self->open = opens;
        return 1;
    }
    if (call_method(self, s_reschedule, 1, now, 0.0, 0) < 0)
        return -1;
    return 1;
}

static int
check_configured(void)
{
    if (!configured) {
        PyErr_SetString(PyExc_RuntimeError, "_framecore.configure() was not called");
        return -1;
    }
    return 0;
}

static PyObject *
FrameCore_clock(FrameCore *self, PyObject *const *args, Py_ssize_t nargs)
{
    double now;
    int heard, r;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "_clock(now, heard) takes 2 arguments");
        return NULL;
    }
    if (check_configured() < 0)
        return NULL;
    now = PyFloat_AsDouble(args[0]);
    if (now == -1.0 && PyErr_Occurred())
        return NULL;
    heard = PyObject_IsTrue(args[1]);
    if (heard < 0)
        return NULL;
    r = decide(self, now, heard);
    if (r < 0)
        return NULL;
    return Py_NewRef(r ? Py_True : Py_False);
}

static double
monotonic(void)
{
    /* time.monotonic(): CLOCK_MONOTONIC, as a double of seconds */
    struct timespec ts;
    long long ns;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ns = (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
    return (double)ns / 1e9; /* as CPython's _PyTime_AsSecondsDouble */
}

static PyObject *
FrameCore_data_received(FrameCore *self, PyObject *data)
{
    if (self->echo && self->fast_len && PyBytes_CheckExact(data)
        && PyBytes_GET_SIZE(data) == self->fast_len && PyBytes_CheckExact(self->fast_head)
        && PyBytes_GET_SIZE(self->fast_head) <= self->fast_len
        && memcmp(PyBytes_AS_STRING(data), PyBytes_AS_STRING(self->fast_head),
                  PyBytes_GET_SIZE(self->fast_head)) == 0) {
        int leaves, queued;
        PyObject *res;
        if (check_configured() < 0)
            return NULL;
        leaves = decide(self, monotonic(), 1);
        if (leaves < 0)
            return NULL;
        if (leaves) {
            queued = PyObject_IsTrue(self->msgs);
            if (queued == 0)
                queued = PyObject_IsTrue(self->pcm);
            if (queued < 0)
                return NULL;
            if (!queued) {
                PyObject *write = Py_NewRef(self->write); /* the call may replace it */
                res = PyObject_CallOneArg(write, data);
                Py_DECREF(write);
                if (res == NULL)
                    return NULL;
                Py_DECREF(res);
                self->echoed += 1;
                Py_RETURN_NONE;
            }
        }
        {
            PyObject *args[3] = {(PyObject *)self, data, leaves ? Py_True : Py_False};
            return PyObject_VectorcallMethod(s_reply, args, 3 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
        }
    }
    {
        PyObject *args[2] = {(PyObject *)self, data};
        return PyObject_VectorcallMethod(s_received, args, 2 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
    }
}

/* Call method `name` of `obj` with no arguments and drop the result: 0, or -1 with an exception. */
static int
call_noargs(PyObject *obj, PyObject *name)
{
    PyObject *res = PyObject_CallMethodNoArgs(obj, name);
    if (res == NULL)
        return -1;
    Py_DECREF(res);
    return 0;
}

/* write(msg): 0, or -1 with an exception set. */
static int
write_msg(FrameCore *self, PyObject *msg)
{
    PyObject *write = Py_NewRef(self->write), *res;
    res = PyObject_CallOneArg(write, msg);
    Py_DECREF(write);
    if (res == NULL)
        return -1;
    Py_DECREF(res);
    return 0;
}

static PyObject *
FrameCore_tick(FrameCore *self, PyObject *Py_UNUSED(ignored))
{
    int leaves, queued;
    PyObject *out, *flag, *silence;
    if (self->paused) {
        if (call_noargs((PyObject *)self, s_tick_slow) < 0)
            return NULL;
        Py_RETURN_NONE;
    }
    if (check_configured() < 0)
        return NULL;
    leaves = decide(self, monotonic(), 0);
    if (leaves <= 0) {
        if (leaves < 0)
            return NULL;
        Py_RETURN_NONE;
    }
    queued = PyObject_IsTrue(self->msgs);
    if (queued < 0)
        return NULL;
    if (queued) { /* a whole frame queued as it came (an echo that is not straight back) */
        PyObject *msgs = Py_NewRef(self->msgs), *msg, *call, *waiter;
        msg = PyObject_CallMethodNoArgs(msgs, s_popleft);
        Py_DECREF(msgs);
        if (msg == NULL)
            return NULL;
        if (write_msg(self, msg) < 0) {
            Py_DECREF(msg);
            return NULL;
        }
        Py_DECREF(msg);
        self->ticked += 1;
        call = PyObject_GetAttr((PyObject *)self, s_call);
        if (call == NULL)
            return NULL;
        waiter = PyObject_GetAttr(call, s_room_waiter);
        if (waiter == NULL) {
            Py_DECREF(call);
            return NULL;
        }
        if (waiter != Py_None && call_noargs(call, s_on_sent) < 0) {
            Py_DECREF(waiter);
            Py_DECREF(call);
            return NULL;
        }
        Py_DECREF(waiter);
        Py_DECREF(call);
        Py_RETURN_NONE;
    }
    queued = PyObject_IsTrue(self->pcm);
    if (queued < 0)
        return NULL;
    if (!queued) {
        out = PyObject_GetAttr((PyObject *)self, s_out);
        if (out == NULL)
            return NULL;
        if (out != Py_None) {
            int on;
            flag = PyObject_GetAttr(out, s_silence);
            if (flag == NULL) {
                Py_DECREF(out);
                return NULL;
            }
            on = PyObject_IsTrue(flag);
            Py_DECREF(flag);
            if (on < 0) {
                Py_DECREF(out);
                return NULL;
            }
            if (on) { /* a silent caller's usual frame */
                silence = PyObject_GetAttr(out, s_silence_message);
                Py_DECREF(out);
                if (silence == NULL)
                    return NULL;
                if (write_msg(self, silence) < 0) {
                    Py_DECREF(silence);
                    return NULL;
                }
                Py_DECREF(silence);
                self->silenced += 1;
                Py_RETURN_NONE;
            }
        }
        Py_DECREF(out);
    }
    if (call_noargs((PyObject *)self, s_send_ticked) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyMethodDef FrameCore_methods[] = {
    {"tick", (PyCFunction)FrameCore_tick, METH_NOARGS,
     "The shared ticker's call: this call's deadline has come."},
    {"_clock", (PyCFunction)(void (*)(void))FrameCore_clock, METH_FASTCALL,
     "_clock(now, heard): whether the call's next frame leaves now."},
    {"data_received", (PyCFunction)FrameCore_data_received, METH_O,
     "The receive callback: the echo's whole frame straight back, the rest to _received()."},
    {NULL}
};

static PyMemberDef FrameCore_members[] = {
    {"due", T_DOUBLE, offsetof(FrameCore, due), 0, "the deadline of the next frame"},
    {"_grid", T_DOUBLE, offsetof(FrameCore, grid), 0, NULL},
    {"_open", T_DOUBLE, offsetof(FrameCore, open), 0, NULL},
    {"_last", T_DOUBLE, offsetof(FrameCore, last), 0, NULL},
    {"_sample", T_INT, offsetof(FrameCore, sample), 0, NULL},
    {"_next_sample", T_INT, offsetof(FrameCore, next_sample), 0, NULL},
    {"_off_grid", T_BOOL, offsetof(FrameCore, off_grid), 0, NULL},
    {"_stopped", T_BOOL, offsetof(FrameCore, stopped), 0, NULL},
    {"_echo", T_BOOL, offsetof(FrameCore, echo), 0, NULL},
    {"_fast_len", T_PYSSIZET, offsetof(FrameCore, fast_len), 0, NULL},
    {"_echoed", T_PYSSIZET, offsetof(FrameCore, echoed), 0, NULL},
    {"_paused", T_BOOL, offsetof(FrameCore, paused), 0, NULL},
    {"_ticked", T_PYSSIZET, offsetof(FrameCore, ticked), 0, NULL},
    {"_silenced", T_PYSSIZET, offsetof(FrameCore, silenced), 0, NULL},
    {"_fast_head", T_OBJECT, offsetof(FrameCore, fast_head), 0, NULL},
    {"_msgs", T_OBJECT, offsetof(FrameCore, msgs), 0, NULL},
    {"_pcm", T_OBJECT, offsetof(FrameCore, pcm), 0, NULL},
    {"_write", T_OBJECT, offsetof(FrameCore, write), 0, NULL},
    {NULL}
};

static PyTypeObject FrameCoreType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "audionet.audiosocket._framecore.FrameCore",
    .tp_doc = "The per-frame state and decisions of one call (the C twin of PyFrameCore).",
    .tp_basicsize = sizeof(FrameCore),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_new = FrameCore_new,
    .tp_traverse = (traverseproc)FrameCore_traverse,
    .tp_clear = (inquiry)FrameCore_clear,
    .tp_dealloc = (destructor)FrameCore_dealloc,
    .tp_methods = FrameCore_methods,
    .tp_members = FrameCore_members,
};

static PyObject *
configure(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    double v[5];
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "configure(period, slot, early, min_gap, aim)");
        return NULL;
    }
    for (int i = 0; i < 5; i++) {
        v[i] = PyFloat_AsDouble(args[i]);
        if (v[i] == -1.0 && PyErr_Occurred())
            return NULL;
    }
    PERIOD = v[0];
    SLOT = v[1];
    EARLY = v[2];
    MIN_GAP = v[3];
    AIM = v[4];
    configured = 1;
    Py_RETURN_NONE;
}

static PyMethodDef module_methods[] = {
    {"configure", (PyCFunction)(void (*)(void))configure, METH_FASTCALL,
     "configure(period, slot, early, min_gap, aim): the clock's constants."},
    {NULL}
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_framecore", "The per-frame core of a call, in C.", -1, module_methods,
};

PyMODINIT_FUNC
PyInit__framecore(void)
{
    PyObject *m;
    if (PyType_Ready(&FrameCoreType) < 0)
        return NULL;
    s_lock = PyUnicode_InternFromString("_lock");
    s_reschedule = PyUnicode_InternFromString("_reschedule");
    s_pass = PyUnicode_InternFromString("_pass");
    s_received = PyUnicode_InternFromString("_received");
    s_reply = PyUnicode_InternFromString("_reply");
    s_tick_slow = PyUnicode_InternFromString("_tick_slow");
    s_send_ticked = PyUnicode_InternFromString("_send_ticked");
    s_popleft = PyUnicode_InternFromString("popleft");
    s_call = PyUnicode_InternFromString("call");
    s_room_waiter = PyUnicode_InternFromString("_room_waiter");
    s_on_sent = PyUnicode_InternFromString("_on_sent");
    s_out = PyUnicode_InternFromString("out");
    s_silence = PyUnicode_InternFromString("silence");
    s_silence_message = PyUnicode_InternFromString("silence_message");
    if (!s_lock || !s_reschedule || !s_pass || !s_received || !s_reply || !s_tick_slow
        || !s_send_ticked || !s_popleft || !s_call || !s_room_waiter || !s_on_sent || !s_out
        || !s_silence || !s_silence_message)
        return NULL;
    m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    if (PyModule_AddObjectRef(m, "FrameCore", (PyObject *)&FrameCoreType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
