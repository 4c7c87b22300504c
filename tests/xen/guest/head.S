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
#ifdef TG_PVH
/* PVH: Xen enters here in 32-bit protected mode, paging off, %ebx = the
 * physical address of struct hvm_start_info. */
NOTE(XEN_ELFNOTE_PHYS32_ENTRY, .long tg_pvh_start)
#endif
#ifndef TG_NO_SUSPEND_CANCEL
/* We handle SCHEDOP_shutdown(SHUTDOWN_suspend) returning 1 (seed 003). */
NOTE(XEN_ELFNOTE_SUSPEND_CANCEL, .long 1)
#endif

	.text
#ifdef TG_PVH
/*
 * PVH boot: identity-map the first 4 GiB with 2 MiB pages (the image is
 * linked at its physical address; the xenstore and console rings are
 * special pages just below 4 GiB),
 * enable PAE + long mode + paging, load
 * a 64-bit GDT and continue in 64-bit code.  Interrupts stay off: the
 * guest never enables them (it waits with SCHEDOP_poll).
 */
	.code32
	.globl tg_pvh_start
tg_pvh_start:
	cld
	movl %ebx, tg_pvh_start_info
	/* 4 PDs: 2048 x 2 MiB, present | writable | large */
	movl $tg_pvh_pd, %edi
	xorl %eax, %eax
	movl $2048, %ecx
1:	movl %eax, %edx
	orl $0x83, %edx
	movl %edx, (%edi)
	movl $0, 4(%edi)
	addl $0x200000, %eax
	addl $8, %edi
	loop 1b
	/* PDPT[0..3] -> the PDs */
	movl $tg_pvh_pd, %eax
	orl $0x3, %eax
	movl $tg_pvh_pdpt, %edi
	movl $4, %ecx
2:	movl %eax, (%edi)
	addl $4096, %eax
	addl $8, %edi
	loop 2b
	movl $tg_pvh_pdpt, %eax
	orl $0x3, %eax
	movl %eax, tg_pvh_pml4
	movl $tg_pvh_pml4, %eax
	movl %eax, %cr3
	movl %cr4, %eax
	orl $0x20, %eax			/* PAE */
	movl %eax, %cr4
	movl $0xc0000080, %ecx		/* EFER */
	rdmsr
	orl $0x100, %eax		/* LME */
	wrmsr
	movl %cr0, %eax
	orl $0x80000001, %eax		/* PG | PE */
	movl %eax, %cr0
	lgdt tg_pvh_gdt_desc
	ljmp $0x08, $tg_pvh_64

	.code64
tg_pvh_64:
	movl $0x10, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	movl %eax, %fs
	movl %eax, %gs
	leaq tg_boot_stack_top(%rip), %rsp
	xorl %ebp, %ebp
	call tg_main
3:	hlt
	jmp 3b

	.data
	.balign 8
tg_pvh_gdt:
	.quad 0
	.quad 0x00af9a000000ffff	/* 0x08: 64-bit code */
	.quad 0x00cf92000000ffff	/* 0x10: data */
tg_pvh_gdt_desc:
	.word tg_pvh_gdt_desc - tg_pvh_gdt - 1
	.long tg_pvh_gdt
	.globl tg_pvh_start_info
tg_pvh_start_info:
	.long 0

	.bss
	.balign 4096
tg_pvh_pml4:
	.skip 4096
tg_pvh_pdpt:
	.skip 4096
tg_pvh_pd:
	.skip 4 * 4096

	.text
#endif
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
