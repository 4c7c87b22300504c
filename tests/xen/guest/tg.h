/* SPDX-License-Identifier: MIT */
/*
 * tiber-testguest: shared declarations.  Freestanding: only gcc's own
 * headers (stdint, stddef, stdarg, stdbool) and Xen's public headers.
 */
#ifndef TG_H
#define TG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <xen/xen.h>
#include <xen/sched.h>
#include <xen/event_channel.h>
#include <xen/io/console.h>
#include <xen/io/xs_wire.h>
#ifdef TG_PVH
#include <xen/arch-x86/hvm/start_info.h>
#include <xen/hvm/hvm_op.h>
#include <xen/hvm/params.h>
#include <xen/memory.h>
#endif

#define TG_PAGE_SHIFT 12
#define TG_PAGE_SIZE  (1UL << TG_PAGE_SHIFT)

/* Negative error codes (Linux/Xen numbering). */
#define TG_EIO	     5
#define TG_E2BIG     7
#define TG_ENOENT    2
#define TG_EINVAL    22
#define TG_ENOSPC    28
#define TG_EPROTO    71
#define TG_ETIMEDOUT 110

#define tg_mb()	 __atomic_thread_fence(__ATOMIC_SEQ_CST)
#define tg_rmb() __atomic_thread_fence(__ATOMIC_ACQUIRE)
#define tg_wmb() __atomic_thread_fence(__ATOMIC_RELEASE)
#define TG_READ_ONCE(x)	    (*(const volatile __typeof__(x) *)&(x))
#define TG_WRITE_ONCE(x, v) (*(volatile __typeof__(x) *)&(x) = (v))

/* head.S */
extern start_info_t *tg_start_info; /* PV */
extern uint32_t tg_pvh_start_info;  /* PVH: physical address */
long tg_hypercall(unsigned int nr, unsigned long a1, unsigned long a2,
		  unsigned long a3, unsigned long a4, unsigned long a5);
void tg_main(void) __attribute__((noreturn));

/* lib.c */
void *memset(void *dst, int c, size_t n);
void *memcpy(void *dst, const void *src, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);
uint64_t tg_strtou64(const char *s, const char **end);
int tg_vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);
int tg_snprintf(char *buf, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static inline long tg_sched_op(unsigned int cmd, void *arg,
			       unsigned long extra)
{
	return tg_hypercall(__HYPERVISOR_sched_op, cmd, (unsigned long)arg,
			    extra, 0, 0);
}

static inline long tg_evtchn_op(unsigned int cmd, void *arg)
{
	return tg_hypercall(__HYPERVISOR_event_channel_op, cmd,
			    (unsigned long)arg, 0, 0, 0);
}

#endif
