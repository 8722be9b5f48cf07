/* vmxu firmware intrinsics: CSRs, port I/O, MSRs, CPUID and the VMX instructions.
 *
 * The instruction wrappers vmxu_insn_*() and every number come from the
 * generated headers (make -C firmware headers); this file only gives them the
 * shape a VMM is written in. A VMX instruction's outcome is in the flags
 * (the xflags CSR, x86 RFLAGS): vmx_result() reads it as VMsucceed,
 * VMfailInvalid (CF) or VMfailValid (ZF, error in VM_INSTRUCTION_ERROR).
 * See docs/firmware.md and docs/cpu.md.
 */
#ifndef VMXU_H
#define VMXU_H

#include <stdint.h>

#include "vmxu_isa.h"
#include "vmxu_soc.h"
#include "vmxu_vmcs.h"
#include "vmxu_x86.h"

/* -- CSRs (csr: a constant, e.g. VMXU_CSR_MCAUSE) ------------------------------------ */

#define csr_read(csr) \
    ({ uint32_t csr_value__; __asm__ volatile("csrr %0, %1" : "=r"(csr_value__) : "i"(csr)); csr_value__; })
#define csr_write(csr, value) __asm__ volatile("csrw %0, %1" : : "i"(csr), "r"((uint32_t)(value)))
#define csr_set(csr, bits) __asm__ volatile("csrs %0, %1" : : "i"(csr), "r"((uint32_t)(bits)))
#define csr_clear(csr, bits) __asm__ volatile("csrc %0, %1" : : "i"(csr), "r"((uint32_t)(bits)))

/* x86 control registers and RFLAGS (bits 31:0; a refused write raises #GP, VMXU_CAUSE_GENERAL_PROTECTION). */
static inline uint32_t read_cr0(void) { return csr_read(VMXU_CSR_XCR0); }
static inline uint32_t read_cr3(void) { return csr_read(VMXU_CSR_XCR3); }
static inline uint32_t read_cr4(void) { return csr_read(VMXU_CSR_XCR4); }
static inline uint32_t read_rflags(void) { return csr_read(VMXU_CSR_XFLAGS); }
static inline void write_cr0(uint32_t value) { csr_write(VMXU_CSR_XCR0, value); }
static inline void write_cr3(uint32_t value) { csr_write(VMXU_CSR_XCR3, value); }
static inline void write_cr4(uint32_t value) { csr_write(VMXU_CSR_XCR4, value); }

/* -- port I/O ------------------------------------------------------------------------ */

static inline uint8_t inb(uint16_t port) { return (uint8_t)vmxu_insn_inb(port); }
static inline uint16_t inw(uint16_t port) { return (uint16_t)vmxu_insn_inw(port); }
static inline uint32_t inl(uint16_t port) { return vmxu_insn_inl(port); }
static inline void outb(uint16_t port, uint8_t value) { vmxu_insn_outb(port, value); }
static inline void outw(uint16_t port, uint16_t value) { vmxu_insn_outw(port, value); }
static inline void outl(uint16_t port, uint32_t value) { vmxu_insn_outl(port, value); }

/* -- CPUID and MSRs -------------------------------------------------------------------- */

enum cpuid_register { CPUID_EAX = 0, CPUID_EBX = 1, CPUID_ECX = 2, CPUID_EDX = 3 };

static inline uint32_t cpuid(uint32_t leaf, enum cpuid_register reg) { return vmxu_insn_cpuid(leaf, reg); }

/* RDMSR leaves bits 63:32 in xhi; WRMSR takes them from there. A #GP traps (VMXU_CAUSE_GENERAL_PROTECTION). */
static inline uint64_t rdmsr(uint32_t msr)
{
    uint32_t low = vmxu_insn_rdmsr(msr);
    uint32_t high = csr_read(VMXU_CSR_XHI);
    return ((uint64_t)high << 32) | low;
}

static inline void wrmsr(uint32_t msr, uint64_t value)
{
    csr_write(VMXU_CSR_XHI, (uint32_t)(value >> 32));
    vmxu_insn_wrmsr(msr, (uint32_t)value);
}

/* -- VMX instructions -------------------------------------------------------------------- */

enum vmx_result { VMX_SUCCEED = 0, VMX_FAIL_INVALID = 1, VMX_FAIL_VALID = 2 };

/* The outcome of the last VMX instruction, from RFLAGS.CF and ZF. */
static inline enum vmx_result vmx_result(void)
{
    uint32_t flags = read_rflags();
    if (flags & X86_RFLAGS_CF)
        return VMX_FAIL_INVALID;
    if (flags & X86_RFLAGS_ZF)
        return VMX_FAIL_VALID;
    return VMX_SUCCEED;
}

static inline enum vmx_result vmxon(uint32_t region) { vmxu_insn_vmxon(region, 0); return vmx_result(); }
static inline enum vmx_result vmxoff(void) { vmxu_insn_vmxoff(); return vmx_result(); }
static inline enum vmx_result vmclear(uint32_t vmcs) { vmxu_insn_vmclear(vmcs, 0); return vmx_result(); }
static inline enum vmx_result vmptrld(uint32_t vmcs) { vmxu_insn_vmptrld(vmcs, 0); return vmx_result(); }
static inline enum vmx_result vmlaunch(void) { vmxu_insn_vmlaunch(); return vmx_result(); }
static inline enum vmx_result vmresume(void) { vmxu_insn_vmresume(); return vmx_result(); }
static inline enum vmx_result vmcall(void) { vmxu_insn_vmcall(); return vmx_result(); }

/* *pointer := current-VMCS pointer bits 31:0 (0xFFFFFFFF without one). */
static inline enum vmx_result vmptrst(uint32_t *pointer)
{
    uint32_t value = vmxu_insn_vmptrst();
    enum vmx_result result = vmx_result();
    if (result == VMX_SUCCEED)
        *pointer = value;
    return result;
}

/* *value := the field at 32-bit operand size (a high access, encoding | 1, gives bits 63:32). */
static inline enum vmx_result vmread(uint32_t field, uint32_t *value)
{
    uint32_t read = vmxu_insn_vmread(field);
    enum vmx_result result = vmx_result();
    if (result == VMX_SUCCEED)
        *value = read;
    return result;
}

static inline enum vmx_result vmwrite(uint32_t field, uint32_t value)
{
    vmxu_insn_vmwrite(field, value);
    return vmx_result();
}

/* The current VMCS's VM-instruction error (after VMfailValid); 0 when it cannot be read. */
static inline uint32_t vm_instruction_error(void)
{
    uint32_t error = 0;
    vmread(VMCS_VM_INSTRUCTION_ERROR, &error);
    return error;
}

/* -- ending a run ------------------------------------------------------------------------ */

/* The failure code of a trap the program did not expect: 0x8000 | interrupt << 8 | cause. */
#define VMXU_EXIT_TRAP(mcause) (0x8000u | (((mcause) >> VMXU_MCAUSE_INTERRUPT_SHIFT) << 8) | ((mcause) & 0xFFu))

/* Stop the run through the test finisher: 0 passes, anything else fails with code & 0xFFFF (0 -> 1). */
__attribute__((noreturn)) void vmxu_exit(int code);

/* -- traps --------------------------------------------------------------------------------- */

/* What the trap vector (crt0.S) saved; x[2] is the interrupted sp. */
struct vmxu_trap_frame {
    uint32_t x[32];
    uint32_t mepc, mcause, mtval, padding;
};

/* Called by the trap vector. The default prints mcause/mepc/mtval and ends the run with
 * VMXU_EXIT_TRAP(mcause); define your own to handle traps (return to resume at frame->mepc). */
void vmxu_trap(struct vmxu_trap_frame *frame);

/* The default handler, for a program's own handler to fall back on. */
__attribute__((noreturn)) void vmxu_trap_default(struct vmxu_trap_frame *frame);

#endif /* VMXU_H */
