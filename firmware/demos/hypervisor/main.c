/* hypervisor: a VMM that launches a guest and emulates its serial port (docs/guests.md).
 *
 * The VMM enters VMX operation, fills a VMCS with the generated launchable state
 * (include/vmxu_guest.h, through lib/vmm.c), points the guest at guest_main on its own stack with
 * its own trap vector, turns on unconditional I/O exiting and launches it. The
 * guest prints through the 16550 at 0x3F8 (each IN and OUT a VM exit: the VMM
 * emulates the line status register and writes the guest's characters to the real
 * UART), asks CPUID (the VMM answers with its own leaf), reads two MSRs (the MSR
 * bitmap passes one through and sends the other to the VMM), sets CR0.TS under a
 * guest/host mask (the VMM keeps the read shadow), hits a breakpoint the exception
 * bitmap sends to the VMM, halts (WFI: HLT exiting), is interrupted by the timer
 * (external-interrupt exiting: the VMM stops the timer), asks the VMM (CPUID leaf
 * 0x4000_0001) to start the VMX-preemption timer and spins until it is preempted
 * (the VMM stops the timer and lets it go on), and ends with VMCALL. The VMM then
 * prints its exit log (reasons and counts) and passes.
 *
 * An exit arrives at vmexit_entry (HOST_RIP) with the host's sp (HOST_RSP) and the
 * guest's other registers: the stub saves them in guest_regs (through mscratch,
 * which is the host's in root operation: the trap registers are banked), calls
 * vmexit_handler, restores them and VMRESUMEs.
 */
#include "console.h"
#include "vmm.h"
#include "vmxu.h"
#include "vmxu_guest.h"

static uint8_t vmxon_region[VMXU_VMCS_REGION_BYTES] __attribute__((aligned(4096)));
static uint8_t vmcs[VMXU_VMCS_REGION_BYTES] __attribute__((aligned(4096)));
static uint8_t msr_bitmap[4096] __attribute__((aligned(4096)));
static uint32_t guest_stack[1024] __attribute__((aligned(16)));
static uint32_t host_stack[1024] __attribute__((aligned(16)));

/* The guest's x1..x31 at an exit (x2, sp, is GUEST_RSP in the VMCS); the stub's save area. */
uint32_t guest_regs[32];

#define UART_LSR_THRE_TEMT 0x60u /* what the emulated line status register says: ready */
#define MAX_REASON 64u
static uint32_t exits[MAX_REASON];
static const uint32_t VMM_CPUID_LEAF = 0x75786D76u; /* "vmxu" (little-endian): what CPUID leaf 0x4000_0000 answers */
static const uint32_t VMM_SYSENTER_CS = 0xC5u;      /* what the VMM answers for the MSR it keeps */
static const uint32_t PREEMPTION_TICKS = 100u;      /* TSC / 32 (IA32_VMX_MISC[4:0] = 5): 3,200 cycles */
static volatile uint32_t preempted;                 /* set by the VMM when the preemption timer exits */

void vmexit_entry(void);
void vmxu_trap_entry(void); /* crt0.S: the guest's trap vector too */
__asm__(".text\n"
        ".balign 4\n"
        ".globl vmexit_entry\n"
        "vmexit_entry:\n"
        "    csrrw t0, mscratch, t0\n" /* t0 := &guest_regs; mscratch := the guest's t0 */
        "    sw x1, 4(t0)\n"
        "    .irp reg, 3,4,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31\n"
        "    sw x\\reg, (\\reg * 4)(t0)\n"
        "    .endr\n"
        "    csrr t1, mscratch\n"
        "    sw t1, 20(t0)\n"
        "    csrw mscratch, t0\n"
        "    call vmexit_handler\n"
        "    la t0, guest_regs\n"
        "    lw x1, 4(t0)\n"
        "    .irp reg, 3,4,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31\n"
        "    lw x\\reg, (\\reg * 4)(t0)\n"
        "    .endr\n"
        "    lw t0, 20(t0)\n"
        "    " VMM_ASM_VMX(VMXU_INSN_VMRESUME_FUNCT7) ", x0, x0, x0\n" /* VMRESUME */
        "    call vmresume_failed\n");

__attribute__((noreturn)) void vmresume_failed(void)
{
    printf("vmm: VMRESUME failed: error %u\n", vm_instruction_error());
    vmxu_exit(3);
}

/* A guest register by number, as the exiting instruction names it (x2 lives in GUEST_RSP). */
static uint32_t guest_reg(uint32_t n) { return n == 2 ? vmcs_field(VMCS_GUEST_RSP) : guest_regs[n]; }

static void set_guest_reg(uint32_t n, uint32_t value)
{
    if (n == 2)
        vmwrite(VMCS_GUEST_RSP, value);
    else if (n != 0)
        guest_regs[n] = value;
}

static const char *reason_name(uint32_t reason)
{
    switch (reason) {
    case VMXU_EXIT_CPUID:
        return "CPUID";
    case VMXU_EXIT_VMCALL:
        return "VMCALL";
    case VMXU_EXIT_IO_INSTRUCTION:
        return "I/O instruction";
    case VMXU_EXIT_EXCEPTION_NMI:
        return "exception";
    case VMXU_EXIT_EXTERNAL_INTERRUPT:
        return "interrupt";
    case VMXU_EXIT_HLT:
        return "HLT";
    case VMXU_EXIT_CR_ACCESS:
        return "CR access";
    case VMXU_EXIT_RDMSR:
        return "RDMSR";
    case VMXU_EXIT_PREEMPTION_TIMER:
        return "preemption timer";
    default:
        return "other";
    }
}

static __attribute__((noreturn)) void finish(void)
{
    printf("vmm: the guest is done; exits:\n");
    for (uint32_t reason = 0; reason < MAX_REASON; reason++)
        if (exits[reason])
            printf("vmm:   %2u %-16s %u\n", reason, reason_name(reason), exits[reason]);
    vmxu_exit(0);
}

void vmexit_handler(void)
{
    uint32_t reason = vmcs_field(VMCS_VM_EXIT_REASON) & 0xFFFFu;
    uint32_t rip = vmcs_field(VMCS_GUEST_RIP);
    uint32_t insn = *(volatile uint32_t *)(uintptr_t)rip; /* the guest's memory is the VMM's */
    uint32_t rd = (insn >> 7) & 31u, rs1 = (insn >> 15) & 31u, rs2 = (insn >> 20) & 31u;
    exits[reason < MAX_REASON ? reason : 0]++;
    switch (reason) {
    case VMXU_EXIT_IO_INSTRUCTION: {
        uint32_t qualification = vmcs_field(VMCS_EXIT_QUALIFICATION);
        uint32_t port = qualification >> 16, in = (qualification >> 3) & 1u;
        if (in)
            set_guest_reg(rd, port == VMXU_PORT_UART + 5 ? UART_LSR_THRE_TEMT : 0xFFu);
        else if (port == VMXU_PORT_UART)
            console_putc((char)guest_reg(rs2));
        break;
    }
    case VMXU_EXIT_CPUID:
        if (guest_reg(rs1) == 0x40000001u) { /* the guest's request: preempt me (the timer saved across exits) */
            vmwrite(VMCS_VMX_PREEMPTION_TIMER_VALUE, PREEMPTION_TICKS);
            vmcs_set_bits(VMCS_PIN_BASED_VM_EXEC_CONTROL, VMX_PIN_ACTIVATE_PREEMPTION_TIMER);
            vmcs_set_bits(VMCS_VM_EXIT_CONTROLS, VMX_EXIT_SAVE_VMX_PREEMPTION_TIMER);
        }
        set_guest_reg(rd, guest_reg(rs1) == 0x40000000u ? VMM_CPUID_LEAF : 0);
        break;
    case VMXU_EXIT_PREEMPTION_TIMER: /* at an instruction boundary: RIP is the next instruction's already */
        printf("vmm: the VMX-preemption timer expired (saved value %u); stopping it\n",
               vmcs_field(VMCS_VMX_PREEMPTION_TIMER_VALUE));
        vmcs_clear_bits(VMCS_PIN_BASED_VM_EXEC_CONTROL, VMX_PIN_ACTIVATE_PREEMPTION_TIMER);
        vmcs_clear_bits(VMCS_VM_EXIT_CONTROLS, VMX_EXIT_SAVE_VMX_PREEMPTION_TIMER); /* needs the timer (26.2.1.2) */
        preempted = 1;
        return;
    case VMXU_EXIT_RDMSR: /* the one the bitmap keeps: bits 63:32 in the guest's xhi */
        set_guest_reg(rd, guest_reg(rs1) == IA32_SYSENTER_CS ? VMM_SYSENTER_CS : 0);
        csr_write(VMXU_CSR_XHI, 0);
        break;
    case VMXU_EXIT_CR_ACCESS: { /* MOV to CR0 of a masked bit: the guest sees what it wrote */
        uint32_t value = guest_reg(rs1), mask = vmcs_field(VMCS_CR0_GUEST_HOST_MASK);
        vmwrite(VMCS_CR0_READ_SHADOW, value & mask);
        vmwrite(VMCS_GUEST_CR0, value);
        printf("vmm: the guest writes CR0 %08x (qualification %08x)\n", value, vmcs_field(VMCS_EXIT_QUALIFICATION));
        break;
    }
    case VMXU_EXIT_EXCEPTION_NMI:
        printf("vmm: the guest's exception, interruption information %08x\n", vmcs_field(VMCS_VM_EXIT_INTR_INFO));
        break;
    case VMXU_EXIT_HLT:
        break;
    case VMXU_EXIT_EXTERNAL_INTERRUPT: /* the timer: the VMM stops it; the interrupted instruction goes on */
        printf("vmm: interrupt, vector %u\n", vmcs_field(VMCS_VM_EXIT_INTR_INFO) & 0xFFu);
        *(volatile uint32_t *)VMXU_TIMER_MTIMECMP = 0xFFFFFFFFu;
        *(volatile uint32_t *)(VMXU_TIMER_MTIMECMP + 4) = 0xFFFFFFFFu;
        return; /* RIP is the next instruction's already */
    case VMXU_EXIT_VMCALL:
        finish();
    default:
        printf("vmm: unexpected exit %u at %08x (qualification %08x)\n", reason, rip,
               vmcs_field(VMCS_EXIT_QUALIFICATION));
        vmxu_exit(4);
    }
    vmwrite(VMCS_GUEST_RIP, rip + vmcs_field(VMCS_VM_EXIT_INSTRUCTION_LEN));
}

static __attribute__((noreturn)) void guest_main(void)
{
    uint32_t sp;
    __asm__ volatile("mv %0, sp" : "=r"(sp));
    printf("guest: hello from the guest (sp %08x)\n", sp);
    uint32_t leaf = cpuid(0x40000000u, CPUID_EAX);
    printf("guest: CPUID 0x40000000 says \"%c%c%c%c\"\n", (char)leaf, (char)(leaf >> 8), (char)(leaf >> 16),
           (char)(leaf >> 24));
    uint32_t eip = (uint32_t)rdmsr(IA32_SYSENTER_EIP), cs = (uint32_t)rdmsr(IA32_SYSENTER_CS);
    printf("guest: SYSENTER_EIP %x (passed through), SYSENTER_CS %x (from the VMM)\n", eip, cs);
    write_cr0(read_cr0() | X86_CR0_TS);
    printf("guest: CR0 reads %08x\n", read_cr0());
    __asm__ volatile("ebreak");
    __asm__ volatile("wfi");
    printf("guest: halted and woken\n");
    volatile uint32_t *mtimecmp = (volatile uint32_t *)VMXU_TIMER_MTIMECMP;
    mtimecmp[1] = 0;
    mtimecmp[0] = 0; /* the timer fires now */
    csr_set(VMXU_CSR_MIE, VMXU_IRQ_MACHINE_TIMER);
    for (volatile int i = 0; i < 50; i++)
        ;
    printf("guest: the timer interrupted me; spinning until the VMM preempts me\n");
    cpuid(0x40000001u, CPUID_EAX);
    while (!preempted)
        ;
    printf("guest: preempted and resumed, bye\n");
    vmcall();
    for (;;)
        ;
}

int main(void)
{
    printf("vmm: vmxu hypervisor\n");
    if (vmm_start(vmxon_region, vmcs) != 0)
        return 1;
    vmm_set_guest(guest_main, &guest_stack[1024], vmxu_trap_entry);
    vmm_set_host(vmexit_entry, &host_stack[1024]);
    vmm_msr_read_exits(msr_bitmap, IA32_SYSENTER_CS); /* reads of it exit; others pass */
    vmwrite(VMCS_MSR_BITMAP, (uint32_t)(uintptr_t)msr_bitmap);
    vmwrite(VMCS_GUEST_SYSENTER_EIP, 0x5EEu);
    vmwrite(VMCS_CR0_GUEST_HOST_MASK, X86_CR0_TS);
    vmwrite(VMCS_CR0_READ_SHADOW, 0);
    vmwrite(VMCS_EXCEPTION_BITMAP, 1u << VMXU_GUEST_VECTOR_BREAKPOINT);
    vmcs_set_bits(VMCS_PIN_BASED_VM_EXEC_CONTROL, VMX_PIN_EXT_INTR_EXITING);
    vmcs_set_bits(VMCS_VM_EXIT_CONTROLS, VMX_EXIT_ACK_INTR_ON_EXIT);
    vmcs_set_bits(VMCS_CPU_BASED_VM_EXEC_CONTROL,
                  VMX_PROC_UNCOND_IO_EXITING | VMX_PROC_USE_MSR_BITMAPS | VMX_PROC_HLT_EXITING);
    csr_write(VMXU_CSR_MSCRATCH, (uint32_t)(uintptr_t)guest_regs);
    printf("vmm: launching the guest at %08x\n", (uint32_t)(uintptr_t)guest_main);
    enum vmx_result result = vmlaunch();
    printf("vmm: VMLAUNCH failed (%u): error %u\n", result, vm_instruction_error());
    return 2;
}
