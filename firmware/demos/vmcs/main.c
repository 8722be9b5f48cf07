/* vmcs: the VMM side of the VMCS capability, checked from firmware.
 *
 * Enables VMX (IA32_FEATURE_CONTROL, CR0/CR4 fixed bits through the x86 CSRs),
 * enters VMX operation, makes a VMCS current, and then VMWRITEs and VMREADs
 * every field of the generated table at 32-bit operand size: a read gives back
 * what was written masked by the field's width, a 32-bit write of a 64-bit
 * field clears its high half (read through the high access, encoding | 1),
 * and a high write leaves the low half alone; read-only fields refuse writes
 * with error 13. Then the error paths (12, 13, 10, 7, 15) and the faults
 * (#GP from a CR4 write, #UD after VMXOFF). Prints what it saw, a summary
 * line, and passes only if every check matched.
 */
#define VMXU_VMCS_FIELD_TABLE
#include "console.h"
#include "vmxu.h"

static uint8_t vmxon_region[VMXU_VMCS_REGION_BYTES] __attribute__((aligned(4096)));
static uint8_t vmcs_fields[VMXU_VMCS_REGION_BYTES] __attribute__((aligned(4096)));
static uint8_t vmcs_empty[VMXU_VMCS_REGION_BYTES] __attribute__((aligned(4096)));

static unsigned checks, mismatches;

static int expect(int ok, const char *what, uint32_t got, uint32_t want)
{
    checks++;
    if (!ok) {
        mismatches++;
        printf("  MISMATCH %s: got %x, expected %x\n", what, got, want);
    }
    return ok;
}

static int expect_eq(const char *what, uint32_t got, uint32_t want)
{
    return expect(got == want, what, got, want);
}

/* VMfailValid with this error number in the current VMCS. */
static int expect_fail_valid(const char *what, enum vmx_result result, uint32_t error)
{
    if (!expect_eq(what, result, VMX_FAIL_VALID))
        return 0;
    return expect_eq(what, vm_instruction_error(), error);
}

static const char *result_name(enum vmx_result result)
{
    switch (result) {
    case VMX_SUCCEED:
        return "VMsucceed";
    case VMX_FAIL_INVALID:
        return "VMfailInvalid";
    default:
        return "VMfailValid";
    }
}

/* A value per field with bits set in both halves, so a lost byte shows. */
static uint32_t pattern(uint32_t encoding)
{
    uint32_t v = encoding ^ 0x5A5A0000u;
    v ^= v << 13;
    v ^= v >> 17;
    v ^= v << 5;
    return v | 0x00010001u;
}

static const char *width_name(uint32_t encoding)
{
    if (VMCS_ENCODING_ACCESS_HIGH(encoding))
        return "high";
    switch (VMCS_ENCODING_WIDTH(encoding)) {
    case VMCS_WIDTH_W16:
        return "16";
    case VMCS_WIDTH_W64:
        return "64";
    case VMCS_WIDTH_W32:
        return "32";
    default:
        return "nat";
    }
}

/* What a 32-bit VMREAD returns of a value written by a 32-bit VMWRITE (SDM 24.11.2). */
static uint32_t width_mask(uint32_t encoding)
{
    if (!VMCS_ENCODING_ACCESS_HIGH(encoding) && VMCS_ENCODING_WIDTH(encoding) == VMCS_WIDTH_W16)
        return 0xFFFFu;
    return 0xFFFFFFFFu;
}

static void check_field(const struct vmxu_vmcs_field *field)
{
    uint32_t encoding = field->encoding, value = pattern(encoding), got = 0;
    const char *verdict = "ok";
    unsigned before = mismatches;

    if (VMCS_ENCODING_TYPE(encoding) == VMCS_TYPE_EXIT_INFO) {
        expect_fail_valid(field->name, vmwrite(encoding, value), VMXU_VMERR_VMWRITE_READ_ONLY_COMPONENT);
        expect_eq(field->name, vmread(encoding, &got), VMX_SUCCEED);
        /* A fresh VMCS is all zero, except the error the refused write just left. */
        uint32_t want = encoding == VMCS_VM_INSTRUCTION_ERROR ? VMXU_VMERR_VMWRITE_READ_ONLY_COMPONENT : 0;
        expect_eq(field->name, got, want);
        if (mismatches != before)
            verdict = "MISMATCH";
        printf("  %04x %-32s %-4s ro  read %08x  %s\n", encoding, field->name, width_name(encoding), got, verdict);
        return;
    }

    expect_eq(field->name, vmwrite(encoding, value), VMX_SUCCEED);
    expect_eq(field->name, vmread(encoding, &got), VMX_SUCCEED);
    expect_eq(field->name, got, value & width_mask(encoding));
    if (VMCS_ENCODING_ACCESS_HIGH(encoding)) {
        /* A high write moves bits 63:32 only: the full field still reads the low pattern. */
        uint32_t low = 0;
        expect_eq(field->name, vmread(encoding & ~1u, &low), VMX_SUCCEED);
        expect_eq(field->name, low, pattern(encoding & ~1u));
    } else if (VMCS_ENCODING_WIDTH(encoding) == VMCS_WIDTH_W64) {
        /* A 32-bit write of a 64-bit field clears bits 63:32. */
        uint32_t high = 0xFFFFFFFFu;
        expect_eq(field->name, vmread(encoding | 1u, &high), VMX_SUCCEED);
        expect_eq(field->name, high, 0);
    }
    if (mismatches != before)
        verdict = "MISMATCH";
    printf("  %04x %-32s %-4s rw  wrote %08x read %08x  %s\n", encoding, field->name, width_name(encoding), value, got,
           verdict);
}

/* Expected traps: the handler records the cause and skips the instruction. */
static volatile uint32_t trap_cause;
static volatile int trap_expected;

void vmxu_trap(struct vmxu_trap_frame *frame)
{
    if (!trap_expected)
        vmxu_trap_default(frame);
    trap_expected = 0;
    trap_cause = frame->mcause;
    frame->mepc += 4;
}

static void arm_trap(void)
{
    trap_cause = 0;
    trap_expected = 1;
}

static void enable_vmx(void)
{
    uint64_t feature_control = rdmsr(IA32_FEATURE_CONTROL);
    if (!(feature_control & FEATURE_CONTROL_LOCK))
        wrmsr(IA32_FEATURE_CONTROL, FEATURE_CONTROL_LOCK | FEATURE_CONTROL_VMX_OUTSIDE_SMX);
    feature_control = rdmsr(IA32_FEATURE_CONTROL);
    printf("IA32_FEATURE_CONTROL = %x\n", (uint32_t)feature_control);
    expect_eq("IA32_FEATURE_CONTROL", (uint32_t)feature_control,
              FEATURE_CONTROL_LOCK | FEATURE_CONTROL_VMX_OUTSIDE_SMX);

    uint32_t cr0_fixed0 = (uint32_t)rdmsr(IA32_VMX_CR0_FIXED0), cr0_fixed1 = (uint32_t)rdmsr(IA32_VMX_CR0_FIXED1);
    uint32_t cr4_fixed0 = (uint32_t)rdmsr(IA32_VMX_CR4_FIXED0), cr4_fixed1 = (uint32_t)rdmsr(IA32_VMX_CR4_FIXED1);
    write_cr0((read_cr0() | cr0_fixed0) & cr0_fixed1);
    write_cr4((read_cr4() | cr4_fixed0) & cr4_fixed1);
    printf("CR0 = %08x (fixed0 %08x fixed1 %08x)\n", read_cr0(), cr0_fixed0, cr0_fixed1);
    printf("CR4 = %08x (fixed0 %08x fixed1 %08x)\n", read_cr4(), cr4_fixed0, cr4_fixed1);
    expect_eq("CR0 fixed bits", read_cr0() & cr0_fixed0, cr0_fixed0);
    expect_eq("CR4 fixed bits", read_cr4() & cr4_fixed0, cr4_fixed0);
}

static void check_error_paths(void)
{
    uint32_t got;
    printf("error paths:\n");

    enum vmx_result r = vmread(0x1000u, &got); /* bit 12 of an encoding is reserved */
    printf("  VMREAD of unsupported encoding 1000: %s, error %u\n", result_name(r), vm_instruction_error());
    expect_fail_valid("VMREAD unsupported", r, VMXU_VMERR_UNSUPPORTED_VMCS_COMPONENT);

    r = vmwrite(VMCS_GUEST_ES_SELECTOR | 1u, 0); /* the high access of a 16-bit field */
    printf("  VMWRITE of unsupported encoding %04x: %s, error %u\n", VMCS_GUEST_ES_SELECTOR | 1u, result_name(r),
           vm_instruction_error());
    expect_fail_valid("VMWRITE unsupported", r, VMXU_VMERR_UNSUPPORTED_VMCS_COMPONENT);

    r = vmwrite(VMCS_VM_EXIT_REASON, 1);
    printf("  VMWRITE of read-only VM_EXIT_REASON: %s, error %u\n", result_name(r), vm_instruction_error());
    expect_fail_valid("VMWRITE read-only", r, VMXU_VMERR_VMWRITE_READ_ONLY_COMPONENT);

    r = vmptrld((uint32_t)(uintptr_t)vmxon_region);
    printf("  VMPTRLD of the VMXON region: %s, error %u\n", result_name(r), vm_instruction_error());
    expect_fail_valid("VMPTRLD VMXON region", r, VMXU_VMERR_VMPTRLD_VMXON_POINTER);

    r = vmxon((uint32_t)(uintptr_t)vmxon_region);
    printf("  VMXON in VMX root operation: %s, error %u\n", result_name(r), vm_instruction_error());
    expect_fail_valid("VMXON in root", r, VMXU_VMERR_VMXON_IN_ROOT);

    expect_eq("VMCLEAR empty", vmclear((uint32_t)(uintptr_t)vmcs_empty), VMX_SUCCEED);
    expect_eq("VMPTRLD empty", vmptrld((uint32_t)(uintptr_t)vmcs_empty), VMX_SUCCEED);
    r = vmlaunch();
    printf("  VMLAUNCH of an empty VMCS: %s, error %u\n", result_name(r), vm_instruction_error());
    expect_fail_valid("VMLAUNCH empty", r, VMXU_VMERR_ENTRY_INVALID_CONTROL_FIELD);

    r = vmresume();
    printf("  VMRESUME of a clear VMCS: %s, error %u\n", result_name(r), vm_instruction_error());
    expect_fail_valid("VMRESUME clear", r, VMXU_VMERR_VMRESUME_NONLAUNCHED_VMCS);

    arm_trap();
    write_cr4(read_cr4() & ~X86_CR4_VMXE);
    printf("  clearing CR4.VMXE in VMX operation: trap, mcause %u\n", trap_cause);
    expect_eq("CR4.VMXE cleared in VMX operation", trap_cause, VMXU_CAUSE_GENERAL_PROTECTION);
    expect_eq("CR4 unchanged", read_cr4() & X86_CR4_VMXE, X86_CR4_VMXE);
}

int main(void)
{
    printf("vmcs: VMCS capability from the VMM's side\n");
    expect_eq("CPUID.1:ECX.VMX", (cpuid(1, CPUID_ECX) >> 5) & 1, 1);
    enable_vmx();

    uint64_t basic = rdmsr(IA32_VMX_BASIC);
    uint32_t revision = (uint32_t)basic & 0x7FFFFFFFu, region_bytes = (uint32_t)(basic >> 32) & 0x1FFFu;
    printf("IA32_VMX_BASIC = %08x_%08x: revision %u, region %u bytes\n", (uint32_t)(basic >> 32), (uint32_t)basic,
           revision, region_bytes);
    expect_eq("VMCS region size", region_bytes, VMXU_VMCS_REGION_BYTES);
    *(volatile uint32_t *)vmxon_region = revision;
    *(volatile uint32_t *)vmcs_fields = revision;
    *(volatile uint32_t *)vmcs_empty = revision;

    uint32_t vmxon_pa = (uint32_t)(uintptr_t)vmxon_region, vmcs_pa = (uint32_t)(uintptr_t)vmcs_fields;
    enum vmx_result r = vmxon(vmxon_pa);
    printf("VMXON %08x: %s\n", vmxon_pa, result_name(r));
    if (!expect_eq("VMXON", r, VMX_SUCCEED))
        return 1;
    r = vmclear(vmcs_pa);
    printf("VMCLEAR %08x: %s\n", vmcs_pa, result_name(r));
    expect_eq("VMCLEAR", r, VMX_SUCCEED);
    r = vmptrld(vmcs_pa);
    printf("VMPTRLD %08x: %s\n", vmcs_pa, result_name(r));
    expect_eq("VMPTRLD", r, VMX_SUCCEED);
    uint32_t current = 0;
    expect_eq("VMPTRST", vmptrst(&current), VMX_SUCCEED);
    expect_eq("VMPTRST pointer", current, vmcs_pa);

    printf("fields (%u):\n", VMXU_VMCS_FIELD_COUNT);
    for (unsigned i = 0; i < VMXU_VMCS_FIELD_COUNT; i++)
        check_field(&vmxu_vmcs_fields[i]);

    check_error_paths();

    r = vmxoff();
    printf("VMXOFF: %s\n", result_name(r));
    expect_eq("VMXOFF", r, VMX_SUCCEED);
    arm_trap();
    vmread(VMCS_GUEST_CR0, &current);
    printf("VMREAD outside VMX operation: trap, mcause %u\n", trap_cause);
    expect_eq("VMREAD after VMXOFF (#UD)", trap_cause, VMXU_CAUSE_ILLEGAL_INSTRUCTION);

    printf("vmcs: %u fields, %u checks, %u mismatches: %s\n", VMXU_VMCS_FIELD_COUNT, checks, mismatches,
           mismatches ? "FAIL" : "PASS");
    return mismatches ? 1 : 0;
}
