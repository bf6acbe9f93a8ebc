// The header compiles as C++ (extern "C", no C-only constructs) and links: a C++ program
// can call the library directly.
#include <cellgate.h>

#include <cstdio>
#include <cstring>
#include <type_traits>

static_assert(std::is_trivially_copyable<cg_decision>::value, "cg_decision is plain data");
static_assert(std::is_standard_layout<cg_policy_decision>::value, "plain C layout");
static_assert(sizeof(cg_quota) == 3 * sizeof(uint64_t), "three u64");

int main() {
    cg_quota quota{};
    if (cg_quota_parse("2/second", CG_NUL_TERMINATED, &quota, nullptr) != CG_STATUS_OK) return 1;
    cg_keyed_limiter *limiter = nullptr;
    if (cg_keyed_limiter_new(quota, CG_REFILL_GREEDY, 16, nullptr, &limiter) != CG_STATUS_OK)
        return 2;
    const char key[] = "user:42";
    cg_decision decision{};
    int admitted = 0;
    for (int i = 0; i < 3; i++) {
        cg_status status = cg_keyed_limiter_check(
            limiter, reinterpret_cast<const uint8_t *>(key), std::strlen(key), 0, 1, &decision);
        if (status != CG_STATUS_OK) return 3;
        admitted += decision.allowed ? 1 : 0;
    }
    cg_keyed_limiter_free(limiter);
    std::printf("C++: %d of 3 admitted, library %s\n", admitted, cg_version());
    return admitted == 2 && std::strcmp(cg_version(), CG_VERSION) == 0 ? 0 : 4;
}
