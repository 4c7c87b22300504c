/* SPDX-License-Identifier: MIT */
/*
 * tiber-testguest: entry point, ELF notes, hypercall page, boot stack.
 *
 * The domain builder (libxenguest, LOADER=generic) maps the image at its
 * link address (VIRT_BASE 0, so virtual == pseudo-physical, from 1 MiB),
 * fills the hypercall page named by XEN_ELFNOTE_HYPERCALL_PAGE and jumps
 * to XEN_ELFNOTE_ENTRY in 64-bit mode with %rsi = start_info (virtual),
 * event upcalls masked.
 */
#include <xen/elfnote.h>

#define NOTE(type, body)			\
	.pushsection .note.Xen, "a", @note;	\
	.balign 4;				\
	.long 2f - 1f;				\
	.long 4f - 3f;				\
	.long type;				\
1:	.asciz "Xen";				\
2:	.balign 4;				\
3:	body;					\
4:	.balign 4;				\
	.popsection

NOTE(XEN_ELFNOTE_GUEST_OS, .asciz "tiber-testguest")
NOTE(XEN_ELFNOTE_GUEST_VERSION, .asciz "1")
NOTE(XEN_ELFNOTE_XEN_VERSION, .asciz "xen-3.0")
NOTE(XEN_ELFNOTE_LOADER, .asciz "generic")
NOTE(XEN_ELFNOTE_VIRT_BASE, .quad 0)
NOTE(XEN_ELFNOTE_PADDR_OFFSET, .quad 0)
NOTE(XEN_ELFNOTE_ENTRY, .quad tg_start)
NOTE(XEN_ELFNOTE_HYPERCALL_PAGE, .quad hypercall_page)
NOTE(XEN_ELFNOTE_FEATURES, .asciz "!writable_page_tables|pae_pgdir_above_4gb")
NOTE(XEN_ELFNOTE_PAE_MODE, .asciz "yes")
#ifndef TG_NO_SUSPEND_CANCEL
/* We handle SCHEDOP_shutdown(SHUTDOWN_suspend) returning 1 (seed 003). */
NOTE(XEN_ELFNOTE_SUSPEND_CANCEL, .long 1)
#endif

	.text
	.code64
	.globl tg_start
tg_start:
	cld
	movq %rsi, tg_start_info(%rip)
	leaq tg_boot_stack_top(%rip), %rsp
	xorl %ebp, %ebp
	call tg_main
1:	hlt			/* not reached: tg_main never returns */
	jmp 1b

/*
 * long tg_hypercall(unsigned int nr, a1, a2, a3, a4, a5)
 * Xen's 64-bit PV ABI: args in rdi rsi rdx r10 r8, result in rax; the
 * stub at hypercall_page + nr * 32 clobbers rcx and r11 (syscall).
 */
	.globl tg_hypercall
tg_hypercall:
	movl %edi, %eax
	shlq $5, %rax
	leaq hypercall_page(%rip), %r11
	addq %r11, %rax
	movq %rsi, %rdi
	movq %rdx, %rsi
	movq %rcx, %rdx
	movq %r8, %r10
	movq %r9, %r8
	call *%rax
	ret

	.balign 4096
	.globl hypercall_page
hypercall_page:
	.fill 4096, 1, 0xc3	/* ret; Xen overwrites it with the stubs */

	.bss
	.balign 4096
	.globl tg_boot_stack_top
tg_boot_stack:
	.skip 4 * 4096
tg_boot_stack_top:

	.section .note.GNU-stack, "", @progbits
