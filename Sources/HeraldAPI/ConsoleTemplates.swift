import Foundation
import HeraldCore
import HeraldStore
import Hummingbird

extension Console {
    func registerTemplatePages(on router: Router<HeraldRequestContext>) {}
}

extension ConsolePages {
    static let templatePages: [String: String] = [:]
    static let templateEnglish: [String: String] = [:]
    static let templateChinese: [String: String] = [:]
}
