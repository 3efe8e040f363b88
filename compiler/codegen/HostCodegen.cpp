// Host code emission: LLVM IR, TargetMachine object emission and linking of lowered kernels.
#include "compiler/codegen/HostCodegen.h"

#include <cstdlib>
#include <mutex>

#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Target/LLVMIR/Dialect/Builtin/BuiltinToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/LLVMIR/LLVMToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Export.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/IR/LegacyPassManager.h"
#include "llvm/IR/Module.h"
#include "llvm/MC/TargetRegistry.h"
#include "llvm/Passes/PassBuilder.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/TargetSelect.h"
#include "llvm/Target/TargetMachine.h"
#include "llvm/TargetParser/Triple.h"

namespace mlir::ds {

namespace {

std::string featureString(const TargetInfo& target) {
  std::vector<std::string> f;
  for (llvm::StringRef name : target.features()) f.push_back(("+" + name).str());
  return llvm::join(f, ",");
}

llvm::Expected<std::unique_ptr<llvm::TargetMachine>> targetMachine(const TargetInfo& cpu) {
  static std::once_flag once;
  std::call_once(once, [] {
    llvm::InitializeAllTargetInfos();
    llvm::InitializeAllTargets();
    llvm::InitializeAllTargetMCs();
    llvm::InitializeAllAsmPrinters();
  });
  llvm::Triple triple(cpu.triple());
  std::string error;
  const llvm::Target* target = llvm::TargetRegistry::lookupTarget(triple, error);
  if (!target)
    return llvm::createStringError("no LLVM backend for %s: %s", cpu.triple().str().c_str(),
                                   error.c_str());
  llvm::TargetOptions options;
  std::unique_ptr<llvm::TargetMachine> tm(target->createTargetMachine(
      triple, cpu.llvmCpu(), featureString(cpu), options, llvm::Reloc::PIC_, std::nullopt,
      llvm::CodeGenOptLevel::Aggressive));
  if (!tm)
    return llvm::createStringError("cannot create a target machine for %s",
                                   cpu.cpu().str().c_str());
  return tm;
}

// Translates and optimizes; every function gets the CPU's features so inlining and codegen agree.
llvm::Expected<std::unique_ptr<llvm::Module>> toLLVMIR(ModuleOp llvmDialect, llvm::LLVMContext& ctx,
                                                      llvm::TargetMachine& tm, const TargetInfo& cpu) {
  registerBuiltinDialectTranslation(*llvmDialect.getContext());
  registerLLVMDialectTranslation(*llvmDialect.getContext());
  std::unique_ptr<llvm::Module> mod = translateModuleToLLVMIR(llvmDialect, ctx, "ds_kernels");
  if (!mod) return llvm::createStringError("translating the generated kernels to LLVM IR failed");
  mod->setTargetTriple(tm.getTargetTriple());
  mod->setDataLayout(tm.createDataLayout());
  std::string features = featureString(cpu);
  for (llvm::Function& f : *mod) {
    if (f.isDeclaration()) continue;
    f.addFnAttr("target-cpu", cpu.llvmCpu());
    f.addFnAttr("tune-cpu", cpu.tuneCpu());
    if (!features.empty()) f.addFnAttr("target-features", features);
    // The kernels are tiled for the level's vector width: keep those vectors whole even where
    // the tuning prefers narrower ones (prefer-256-bit on AVX-512 chips would split zmm).
    f.addFnAttr("min-legal-vector-width", std::to_string(cpu.vectorBits()));
  }
  llvm::LoopAnalysisManager lam;
  llvm::FunctionAnalysisManager fam;
  llvm::CGSCCAnalysisManager cgam;
  llvm::ModuleAnalysisManager mam;
  llvm::PassBuilder pb(&tm);
  pb.registerModuleAnalyses(mam);
  pb.registerCGSCCAnalyses(cgam);
  pb.registerFunctionAnalyses(fam);
  pb.registerLoopAnalyses(lam);
  pb.crossRegisterProxies(lam, fam, cgam, mam);
  // No fast-math flags reach LLVM: results stay bit-exact to the IR's operation order.
  llvm::ModulePassManager mpm = pb.buildPerModuleDefaultPipeline(llvm::OptimizationLevel::O2);
  mpm.run(*mod, mam);
  return mod;
}

llvm::Expected<std::string> findLinker() {
  if (const char* env = std::getenv("DS_LINKER")) {
    if (llvm::sys::fs::can_execute(env)) return std::string(env);
    return llvm::createStringError("DS_LINKER=%s is not an executable", env);
  }
  for (const char* name : {"ld.lld", "ld.lld-22", "ld.lld-14", "ld"})
    if (llvm::ErrorOr<std::string> path =
            llvm::sys::findProgramByName(name, {"/usr/bin", "/usr/lib/llvm-22/bin", "/bin"}))
      return *path;
  for (const char* name : {"ld.lld", "ld"})
    if (llvm::ErrorOr<std::string> path = llvm::sys::findProgramByName(name)) return *path;
  return llvm::createStringError(
      "no linker for the generated host kernels: install Debian 'lld' (ld.lld) or 'binutils' "
      "(ld), set DS_LINKER, or compile with --codegen=none");
}

// A file removed when this object goes out of scope.
struct TempFile {
  llvm::SmallString<128> path;
  ~TempFile() {
    if (!path.empty()) llvm::sys::fs::remove(path);
  }
};

llvm::Expected<std::vector<uint8_t>> linkSharedObject(llvm::ArrayRef<char> object) {
  llvm::Expected<std::string> linker = findLinker();
  if (!linker) return linker.takeError();
  TempFile obj, so, log;
  int fd = -1;
  if (std::error_code ec = llvm::sys::fs::createTemporaryFile("ds-kernels", "o", fd, obj.path))
    return llvm::createStringError(ec, "cannot create a temporary object file");
  {
    llvm::raw_fd_ostream os(fd, /*shouldClose=*/true);
    os.write(object.data(), object.size());
  }
  if (std::error_code ec = llvm::sys::fs::createTemporaryFile("ds-kernels", "so", so.path))
    return llvm::createStringError(ec, "cannot create a temporary shared object");
  if (std::error_code ec = llvm::sys::fs::createTemporaryFile("ds-kernels", "log", log.path))
    return llvm::createStringError(ec, "cannot create a temporary log file");
  llvm::SmallVector<llvm::StringRef> args = {*linker, "-shared", "-z", "noexecstack",
                                             "--build-id=none", "-o", so.path, obj.path};
  std::optional<llvm::StringRef> redirects[] = {std::nullopt, llvm::StringRef(log.path),
                                                llvm::StringRef(log.path)};
  std::string error;
  int rc = llvm::sys::ExecuteAndWait(*linker, args, std::nullopt, redirects, 0, 0, &error);
  if (rc != 0) {
    std::string output;
    if (auto buf = llvm::MemoryBuffer::getFile(log.path)) output = (*buf)->getBuffer().str();
    return llvm::createStringError("linking the generated kernels with %s failed (%s): %s",
                                   linker->c_str(), error.empty() ? "exit status" : error.c_str(),
                                   output.c_str());
  }
  auto buf = llvm::MemoryBuffer::getFile(so.path);
  if (!buf) return llvm::createStringError(buf.getError(), "cannot read the linked kernels");
  llvm::StringRef bytes = (*buf)->getBuffer();
  return std::vector<uint8_t>(bytes.bytes_begin(), bytes.bytes_end());
}

// A top-level copy of the kernel module, so translation sees no enclosing plan.
OwningOpRef<ModuleOp> detachedCopy(ModuleOp kernels) {
  OwningOpRef<ModuleOp> copy = ModuleOp::create(kernels.getLoc(), "ds_kernels");
  OpBuilder b = OpBuilder::atBlockEnd(copy->getBody());
  for (Operation& op : kernels.getBody()->getOperations()) b.clone(op);
  return copy;
}

}  // namespace

llvm::Expected<std::string> hostKernelsToLLVMIR(ModuleOp kernels, const TargetInfo& target) {
  OwningOpRef<ModuleOp> lowered = detachedCopy(kernels);
  auto tm = targetMachine(target);
  if (!tm) return tm.takeError();
  llvm::LLVMContext ctx;
  auto mod = toLLVMIR(*lowered, ctx, **tm, target);
  if (!mod) return mod.takeError();
  std::string text;
  llvm::raw_string_ostream os(text);
  (*mod)->print(os, nullptr);
  return text;
}

llvm::Expected<CodeObject> compileHostKernels(ModuleOp kernels, const TargetInfo& cpu) {
  OwningOpRef<ModuleOp> lowered = detachedCopy(kernels);
  CodeObject code;
  code.target = cpu.name().str();
  code.triple = cpu.triple().str();
  code.cpu = cpu.cpu().str();
  for (llvm::StringRef f : cpu.features()) code.features.push_back(f.str());
  for (auto fn : lowered->getOps<LLVM::LLVMFuncOp>())
    if (fn->hasAttr("ds.entry")) code.symbols.push_back(fn.getSymName().str());
  auto tm = targetMachine(cpu);
  if (!tm) return tm.takeError();
  llvm::LLVMContext ctx;
  auto mod = toLLVMIR(*lowered, ctx, **tm, cpu);
  if (!mod) return mod.takeError();
  llvm::SmallVector<char, 0> object;
  {
    llvm::raw_svector_ostream os(object);
    llvm::legacy::PassManager codegen;
    if ((*tm)->addPassesToEmitFile(codegen, os, nullptr, llvm::CodeGenFileType::ObjectFile))
      return llvm::createStringError("the %s backend cannot emit object files",
                                     cpu.triple().str().c_str());
    codegen.run(**mod);
  }
  auto bytes = linkSharedObject(object);
  if (!bytes) return bytes.takeError();
  code.bytes = std::move(*bytes);
  return code;
}

}  // namespace mlir::ds
