/* vmexit: VM-exit round trips, in the style of kvm-unit-tests' vmexit test (docs/guests.md).
 *
 * A guest times ROUNDS iterations of one exiting instruction with the cycle CSR (RDTSC: no TSC
 * offsetting, no RDTSC exiting) for each of CPUID, VMCALL, OUT to the POST port (unconditional I/O
 * exiting) and RDMSR of an MSR the bitmap sends to the VMM; it stores the cycles per
 * round trip, guest to guest, and halts (HLT exiting). The VMM's handler is minimal: it checks that the
 * exit reason is the one the guest is timing, advances GUEST_RIP by the instruction length and resumes,
 * in 19 instructions, three of the guest's registers saved through mscratch (the host's: the trap
 * registers are banked). Any other exit, HLT included, goes to vmexit_other, which prints the table
 * (HLT) or the unexpected exit, and ends the run. On the ISS a cycle is an instruction: the same table counts
 * instructions per round trip there.
 */
#include "console.h"
#include "vmm.h"
#include "vmxu.h"
#include "vmxu_guest.h"

#define ROUNDS 64u

static uint8_t vmxon_region[VMXU_VMCS_REGION_BYTES] __attribute__((aligned(4096)));
static uint8_t vmcs[VMXU_VMCS_REGION_BYTES] __attribute__((aligned(4096)));
static uint8_t msr_bitmap[4096] __attribute__((aligned(4096)));
static uint32_t guest_stack[256] __attribute__((aligned(16)));
static uint32_t host_stack[512] __attribute__((aligned(16)));

/* What the minimal handler reaches through mscratch: its save area and the constants it needs
 * (loads are cheaper than building the encodings with lui/addi). Offsets are the asm's. */
struct exit_area {
    uint32_t t1, t2, t3;            /* 0, 4, 8: the guest's */
    uint32_t reason_field;          /* 12: VM_EXIT_REASON */
    uint32_t length_field;          /* 16: VM_EXIT_INSTRUCTION_LEN */
    uint32_t rip_field;             /* 20: GUEST_RIP */
    uint32_t expected_reason;       /* 24: the exit the guest is timing; the handler resumes only it */
};
struct exit_area exit_area = {
    .reason_field = VMCS_VM_EXIT_REASON,
    .length_field = VMCS_VM_EXIT_INSTRUCTION_LEN,
    .rip_field = VMCS_GUEST_RIP,
};

void vmexit_minimal(void);
void vmxu_trap_entry(void); /* crt0.S: the guest's trap vector too */
__asm__(".text\n"
        ".balign 4\n"
        ".globl vmexit_minimal\n"
        "vmexit_minimal:\n"
        "    csrrw t0, mscratch, t0\n" /* t0 := &exit_area; mscratch := the guest's t0 */
        "    sw t1, 0(t0)\n"
        "    sw t2, 4(t0)\n"
        "    sw t3, 8(t0)\n"
        "    lw t2, 12(t0)\n"
        "    " VMM_ASM_VMX(VMXU_INSN_VMREAD_FUNCT7) ", t1, t2, x0\n" /* t1 := the exit reason */
        "    lw t2, 24(t0)\n"
        "    bne t1, t2, 1f\n"
        "    lw t2, 16(t0)\n"
        "    " VMM_ASM_VMX(VMXU_INSN_VMREAD_FUNCT7) ", t1, t2, x0\n" /* t1 := the instruction length */
        "    lw t2, 20(t0)\n"
        "    " VMM_ASM_VMX(VMXU_INSN_VMREAD_FUNCT7) ", t3, t2, x0\n" /* t3 := GUEST_RIP */
        "    add t3, t3, t1\n"
        "    " VMM_ASM_VMX(VMXU_INSN_VMWRITE_FUNCT7) ", x0, t2, t3\n"
        "    lw t1, 0(t0)\n"
        "    lw t2, 4(t0)\n"
        "    lw t3, 8(t0)\n"
        "    csrrw t0, mscratch, t0\n"
        "    " VMM_ASM_VMX(VMXU_INSN_VMRESUME_FUNCT7) ", x0, x0, x0\n"
        "    call vmresume_failed\n"
        "1:  mv a0, t1\n"
        "    call vmexit_other\n");

static uint32_t results[4];
static const char *const names[] = {"CPUID", "VMCALL", "OUT (I/O)", "RDMSR"};

__attribute__((noreturn)) void vmresume_failed(void)
{
    printf("vmm: VMRESUME failed: error %u\n", vm_instruction_error());
    vmxu_exit(3);
}

__attribute__((noreturn)) void vmexit_other(uint32_t reason)
{
    if (reason != VMXU_EXIT_HLT) {
        printf("vmm: unexpected exit %u at %08x (qualification %08x)\n", reason, vmcs_field(VMCS_GUEST_RIP),
               vmcs_field(VMCS_EXIT_QUALIFICATION));
        vmxu_exit(4);
    }
    printf("vmexit: round trip, guest to guest, %u rounds each (cycle CSR)\n", ROUNDS);
    for (uint32_t i = 0; i < sizeof results / sizeof results[0]; i++)
        printf("vmexit:   %-12s %6u\n", names[i], results[i]);
    vmxu_exit(0);
}

static inline uint32_t cycles(void) { return csr_read(VMXU_CSR_CYCLE); }

#define MEASURE(slot, reason, body)                                                                                \
    do {                                                                                                           \
        exit_area.expected_reason = reason;                                                                        \
        uint32_t start_ = cycles();                                                                                \
        for (uint32_t i_ = 0; i_ < ROUNDS; i_++) {                                                                 \
            body;                                                                                                  \
        }                                                                                                          \
        results[slot] = (cycles() - start_) / ROUNDS;                                                              \
    } while (0)

static __attribute__((noreturn)) void guest_main(void)
{
    MEASURE(0, VMXU_EXIT_CPUID, vmxu_insn_cpuid(0, CPUID_EAX));
    MEASURE(1, VMXU_EXIT_VMCALL, vmxu_insn_vmcall());
    MEASURE(2, VMXU_EXIT_IO_INSTRUCTION, vmxu_insn_outb(VMXU_PORT_POST, 0));
    MEASURE(3, VMXU_EXIT_RDMSR, vmxu_insn_rdmsr(IA32_SYSENTER_CS));
    exit_area.expected_reason = 0xFFFFFFFFu; /* no exit is resumed now: HLT ends the run */
    __asm__ volatile("wfi"); /* HLT exiting: the VMM prints the table */
    for (;;)
        ;
}

int main(void)
{
    printf("vmm: vmxu vmexit benchmark\n");
    if (vmm_start(vmxon_region, vmcs) != 0)
        return 1;
    vmm_set_guest(guest_main, &guest_stack[256], vmxu_trap_entry);
    vmm_set_host(vmexit_minimal, &host_stack[512]);
    vmm_msr_read_exits(msr_bitmap, IA32_SYSENTER_CS);
    vmwrite(VMCS_MSR_BITMAP, (uint32_t)(uintptr_t)msr_bitmap);
    vmcs_set_bits(VMCS_CPU_BASED_VM_EXEC_CONTROL,
                  VMX_PROC_UNCOND_IO_EXITING | VMX_PROC_USE_MSR_BITMAPS | VMX_PROC_HLT_EXITING);
    csr_write(VMXU_CSR_MSCRATCH, (uint32_t)(uintptr_t)&exit_area);
    enum vmx_result result = vmlaunch();
    printf("vmm: VMLAUNCH failed (%u): error %u\n", result, vm_instruction_error());
    return 2;
}
