/* vmxu firmware start-up: stack, .bss, trap vector; then main(), whose return value ends the run.
 *
 * The trap vector saves every register in a struct vmxu_trap_frame (include/vmxu.h)
 * on the stack and calls vmxu_trap(frame). The default vmxu_trap (lib/trap.c)
 * prints mcause/mepc/mtval and ends the run with failure code
 * VMXU_EXIT_TRAP(mcause); a program may define its own, and if it returns, the
 * registers (and mepc, from the frame) are restored and MRET resumes.
 */
#define FRAME_BYTES 144     /* x0..x31, mepc, mcause, mtval, padding to 16 bytes */
#define FRAME_MEPC 128
#define FRAME_MCAUSE 132
#define FRAME_MTVAL 136

    .section .text.init, "ax", @progbits
    .globl _start
_start:
    la sp, __stack_top
    la t0, vmxu_trap_entry
    csrw mtvec, t0
    la t0, __bss_start
    la t1, __bss_end
1:  bgeu t0, t1, 2f
    sw zero, 0(t0)
    addi t0, t0, 4
    j 1b
2:  call main
    call vmxu_exit          /* a0: main's return value (0: pass) */
3:  j 3b

    .text
    .balign 4
    .globl vmxu_trap_entry
vmxu_trap_entry:
    addi sp, sp, -FRAME_BYTES
    sw x1, 4(sp)
    .irp reg, 3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    sw x\reg, (\reg * 4)(sp)
    .endr
    addi t0, sp, FRAME_BYTES    /* the interrupted sp */
    sw t0, 8(sp)
    csrr t0, mepc
    sw t0, FRAME_MEPC(sp)
    csrr t0, mcause
    sw t0, FRAME_MCAUSE(sp)
    csrr t0, mtval
    sw t0, FRAME_MTVAL(sp)
    mv a0, sp
    call vmxu_trap
    lw t0, FRAME_MEPC(sp)
    csrw mepc, t0
    lw x1, 4(sp)
    .irp reg, 3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    lw x\reg, (\reg * 4)(sp)
    .endr
    addi sp, sp, FRAME_BYTES
    mret
