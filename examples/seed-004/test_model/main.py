from app.models.base import AnythingBaseModel
from typing import List, Dict, Optional, AsyncGenerator

class MyModel(AnythingBaseModel):
    """
    这是一个示例模型。
    它演示了如何实现一个基本的模型。
    """
    
    async def on_chat_messages(
        self,
        messages: List[Dict[str, str]]
    ) -> AsyncGenerator[str, None]:
        # 访问配置
        parameters = self.config.get("parameters", {})
        temperature = parameters.get("temperature", 0.7)
        
        # 访问数据文件
        vocab_file = self.data_dir / "vocab.txt"
        if vocab_file.exists():
            vocab = vocab_file.read_text()
        
        # 流式输出响应
        yield "这是第一部分响应\n"
        yield "这是第二部分响应\n"
        yield "这是最后一部分响应"

    async def on_chat_start(self) -> None:
        """聊天开始时的钩子方法"""
        self.clear_context()
        
    async def on_chat_end(self) -> None:
        """聊天结束时的钩子方法"""
        self.clear_context()
